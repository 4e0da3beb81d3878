/** The content-store contract against the in-memory store. */
import { MemoryContentStore } from '../../src/storage/memory/memory-content-store.js';
import { contentStoreContract } from './content-store.contract.js';

contentStoreContract('memory', async () => {
  const store = new MemoryContentStore();
  return { store, reopen: async () => store, cleanup: () => store.close() };
});
