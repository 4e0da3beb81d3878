/**
 * The content-store contract against the tiered store (tiering/tiered-content-store.ts): a local
 * hot tier in a temp directory in front of a bucket on a real Ceph RADOS Gateway (skipped
 * without Ceph). `reopen` is another replica: a fresh local tier on the same bucket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'vitest';
import { LocalTier } from '../../src/tiering/local-tier.js';
import { TieredContentStore } from '../../src/tiering/tiered-content-store.js';
import { useS3 } from '../helpers/s3-suite.js';
import { S3Fixture } from '../storage/s3-fixture.js';
import { contentStoreContract } from './content-store.contract.js';

const s3 = useS3();

if (!s3.available) {
  describe('content store contract: tiered', () => {
    it.skip(s3.skipReason ?? 'S3 is not available', () => {});
  });
} else {
  contentStoreContract('tiered (local disk in front of S3)', async () => {
    const fixture = new S3Fixture(s3.target(), s3.prefix());
    const dirs: string[] = [];
    const stores: TieredContentStore[] = [];
    const replica = async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'tiered-contract-'));
      dirs.push(dir);
      const store = new TieredContentStore({ local: await LocalTier.open({ dir, maxBytes: 2 ** 30 }), remote: fixture.store() });
      stores.push(store);
      return store;
    };
    return {
      store: await replica(),
      reopen: replica,
      async cleanup() {
        await Promise.all(stores.map((store) => store.close()));
        await fixture.close();
        await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
      },
    };
  });
}
