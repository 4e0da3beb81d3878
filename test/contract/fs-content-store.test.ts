/** The content-store contract against the filesystem store, in a temp directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsContentStore } from '../../src/storage/fs/fs-content-store.js';
import { contentStoreContract } from './content-store.contract.js';

contentStoreContract('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'content-store-'));
  const store = await FsContentStore.open(root);
  return {
    store,
    reopen: () => FsContentStore.open(root),
    async cleanup() {
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});
