/**
 * The S3 a test file runs against, or the reason it cannot: MIRROR_TEST_S3_* when set (CI, or
 * test/helpers/ceph-s3-global-setup.ts), else a Ceph RADOS Gateway this file starts for itself
 * (about 15 s), else — Ceph not installed — the suite is skipped with a message saying how to
 * run it (with MIRROR_TEST_REQUIRE_SERVICES=1, as in CI, that fails the file instead:
 * required-services.ts). Each test takes its own key prefix, so suites and tests sharing a bucket never see each
 * other's objects.
 *
 *   const s3 = useS3();
 *   describe.skipIf(!s3.available)('...', () => { it('...', () => s3.target() ...) });
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { serviceMissing } from './required-services.js';
import { type CephS3, missingCephBinaries, type S3Target, S3_ENV, s3TargetFromEnv, startCephS3 } from './ceph-s3.js';

export interface S3ForSuite {
  readonly available: boolean;
  /** Why the suite is skipped, when it is. */
  readonly skipReason?: string;
  target(): S3Target;
  /** The cluster's ceph.conf when known (a Ceph this file started, or MIRROR_TEST_S3_CEPH_CONF). */
  cephConf(): string | undefined;
  /** A fresh key prefix ("t-<random>/") for one test. */
  prefix(): string;
}

const START_TIMEOUT_MS = 180_000;

export function useS3(): S3ForSuite {
  const fromEnv = s3TargetFromEnv();
  const missing = fromEnv ? [] : missingCephBinaries();
  const skipReason = missing.length > 0
    ? `S3 suites skipped: Ceph is not installed (missing ${missing.join(', ')}; apt-get install ceph-mon ceph-osd radosgw ceph-common) and ${S3_ENV.endpoint} is not set`
    : undefined;
  serviceMissing(skipReason !== undefined, skipReason ?? '');
  if (skipReason) console.warn(skipReason);
  let started: CephS3 | undefined;
  let target = fromEnv;
  beforeAll(async () => {
    if (target || skipReason) return;
    console.warn(`starting a Ceph S3 for this file alone: set ${S3_ENV.endpoint} (scripts/ceph-s3.ts) or use test/helpers/ceph-s3-global-setup.ts to share one`);
    started = await startCephS3();
    target = started;
  }, START_TIMEOUT_MS);
  afterAll(async () => {
    await started?.stop();
  }, 30_000);
  return {
    available: !skipReason,
    skipReason,
    target: () => {
      if (!target) throw new Error('no S3: useS3() is not available or beforeAll has not run');
      return target;
    },
    cephConf: () => started?.cephConf ?? process.env[S3_ENV.cephConf],
    prefix: () => `t-${randomBytes(6).toString('hex')}/`,
  };
}
