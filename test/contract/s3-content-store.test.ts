/** The content-store contract against the S3 store on a real Ceph RADOS Gateway (skipped without Ceph). */
import { describe, it } from 'vitest';
import { useS3 } from '../helpers/s3-suite.js';
import { S3Fixture } from '../storage/s3-fixture.js';
import { contentStoreContract } from './content-store.contract.js';

const s3 = useS3();

if (!s3.available) {
  describe('content store contract: s3', () => {
    it.skip(s3.skipReason ?? 'S3 is not available', () => {});
  });
} else {
  contentStoreContract('s3', async () => {
    const fixture = new S3Fixture(s3.target(), s3.prefix());
    return { store: fixture.store(), reopen: async () => fixture.store(), cleanup: () => fixture.close() };
  });
}
