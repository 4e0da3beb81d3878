/**
 * Starts or stops the tests' S3 server (a single-node Ceph RADOS Gateway, test/helpers/ceph-s3.ts)
 * from a shell, so CI and benchmarks can start Ceph once for every suite:
 *
 *   eval "$(node --import tsx scripts/ceph-s3.ts start)"   # exports MIRROR_TEST_S3_* and MIRROR_TEST_S3_DIR
 *   npm test                                              # S3 suites reuse it instead of starting their own
 *   node --import tsx scripts/ceph-s3.ts stop "$MIRROR_TEST_S3_DIR"
 *
 * `start` prints only `export NAME='value'` lines on stdout (progress goes to stderr) and leaves
 * the daemons running; `stop` ends them by the PIDs recorded in that directory and removes it.
 */
import { s3TargetEnv, startCephS3, stopCephS3Dir } from '../test/helpers/ceph-s3.js';

async function main(argv: string[]): Promise<void> {
  const [command, dir] = argv;
  if (command === 'start') {
    const s3 = await startCephS3({ detach: true, log: (line) => process.stderr.write(`${line}\n`) });
    const env = { ...s3TargetEnv(s3), MIRROR_TEST_S3_DIR: s3.dir };
    for (const [name, value] of Object.entries(env)) process.stdout.write(`export ${name}='${value}'\n`);
  } else if (command === 'stop' && dir) {
    await stopCephS3Dir(dir);
  } else {
    process.stderr.write('usage: scripts/ceph-s3.ts start | stop <dir printed by start as MIRROR_TEST_S3_DIR>\n');
    process.exitCode = 2;
  }
}

await main(process.argv.slice(2));
