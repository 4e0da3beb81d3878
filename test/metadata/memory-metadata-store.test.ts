/** The MetadataStore contract against the in-memory store; instances of one backend are one object. */
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';

describeMetadataStoreContract('memory', async () => {
  const store = new MemoryMetadataStore();
  return { open: async () => store, destroy: async () => {} };
});
