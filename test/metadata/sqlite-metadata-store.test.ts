/** The MetadataStore contract against SQLite: each test gets a fresh file, opened by as many stores as it asks for. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';

describeMetadataStoreContract('sqlite', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'metadata-sqlite-'));
  return {
    open: async () => new SqliteMetadataStore({ filename: path.join(dir, 'metadata.db') }),
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
});
