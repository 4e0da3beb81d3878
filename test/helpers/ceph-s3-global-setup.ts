/**
 * Vitest globalSetup for suites that need S3: starts one Ceph RADOS Gateway for the whole run
 * (test/helpers/ceph-s3.ts) and hands it to every worker through MIRROR_TEST_S3_* in the
 * environment, which the workers (and any process a test spawns) inherit. Nothing is started
 * when those variables already name an S3 (CI started one) or when Ceph is not installed (the
 * suites then skip themselves with a message). Wire it in a vitest config:
 *
 *   test: { globalSetup: ['test/helpers/ceph-s3-global-setup.ts'] }
 */
import { type CephS3, missingCephBinaries, s3TargetEnv, s3TargetFromEnv, startCephS3 } from './ceph-s3.js';

let started: CephS3 | undefined;

export async function setup(): Promise<void> {
  if (s3TargetFromEnv() || missingCephBinaries().length > 0) return;
  started = await startCephS3({ log: (line) => process.stderr.write(`${line}\n`) });
  Object.assign(process.env, s3TargetEnv(started));
}

export async function teardown(): Promise<void> {
  await started?.stop();
  started = undefined;
}
