/**
 * `npm run attack`: the hostile-upstream and attacking-client run of issue 12, against the real
 * build (`node dist/main.js`, built first when out of date), everything on 127.0.0.1 with ports
 * from the OS and state in one temp directory. Prints one PASS/FAIL line per check and the
 * measured facts (RSS, rows, latency), then a summary; exits 1 if any check failed.
 *
 *   1. hostile upstream answers (test/attack/hostile-answers.ts)
 *   2. private content in every order of events, crafted archives, 3,000 random digests and
 *      3,000 random names (test/attack/private-content.ts)
 *   3. the password attack (test/attack/password-attack.ts)
 *
 * docs/security.md describes the run and what each check means.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { Report } from '../test/attack/attack-support.js';
import { hostileAnswers } from '../test/attack/hostile-answers.js';
import { passwordAttack } from '../test/attack/password-attack.js';
import { privateContent } from '../test/attack/private-content.js';
import { ensureMirrorBuilt } from '../test/interop/support/mirror.js';

const report = new Report();
const root = mkdtempSync(path.join(tmpdir(), 'registry-mirror-attack-'));
const started = Date.now();
try {
  ensureMirrorBuilt();
  process.stdout.write(`attack run against dist/main.js; load average ${loadavg().map((value) => value.toFixed(2)).join(' ')}\n`);
  report.phase('1. hostile upstream answers');
  await hostileAnswers(report, path.join(root, 'hostile'));
  report.phase('2. private content, crafted archives, random digests and names');
  await privateContent(report, path.join(root, 'private'));
  report.phase('3. password attack');
  await passwordAttack(report, path.join(root, 'passwords'));
} catch (error) {
  report.check('the run itself completed', false, (error as Error).stack ?? String(error));
} finally {
  rmSync(root, { recursive: true, force: true });
}
const failed = report.failed;
process.stdout.write(`\n${report.checks.length - failed.length} passed, ${failed.length} failed (${Math.round((Date.now() - started) / 1000)} s)\n`);
for (const entry of failed) process.stdout.write(`  FAILED [${entry.phase}] ${entry.check}: ${entry.detail}\n`);
process.exit(failed.length > 0 ? 1 : 0);
