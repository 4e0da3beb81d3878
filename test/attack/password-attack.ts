/**
 * Phase 3 of the attack run: the password attack of issue 12 item 6 on the real build with
 * auth.htpasswd (bcrypt cost 10, as `htpasswd -B -C 10` writes): an authenticated client pulls an
 * image again and again, first with the mirror idle, then while 20 clients (each from its own
 * loopback address, test/bench/load-client.ts) send wrong passwords as fast as they are
 * answered. Target: its median pull time under attack within 2x of idle.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { startFakeRegistry } from '../helpers/fake-registry.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startServer } from '../bench/mirror-process.js';
import { runLoad, type FloodOutcome } from '../bench/load.js';
import { pull } from '../bench/registry-client.js';
import { percentile } from '../bench/stats.js';
import { MAIN, type Report, writeConfig } from './attack-support.js';

const ATTACKERS = 20;
const ATTACK_MS = 6_000;
const USER = 'honest';
const PASSWORD = 'honest-password';

export async function passwordAttack(report: Report, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const upstream = await startFakeRegistry();
  pushImage(upstream, 'library/alpine', 'latest', makeImage({ layers: [40_000, 8_000], seed: 'attack-auth' }));
  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 10).replace(/^\$2b\$/, '$2y$')}\n`);
  const config = writeConfig(dir, 'auth', { cache: { dir: path.join(dir, 'cache'), maxBytes: 2 ** 30 }, auth: { htpasswd }, upstreams: { 'docker.io': { url: upstream.url } } });
  const mirror = await startServer(MAIN, config);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const authorization = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  try {
    await pull(mirror.url, 'library/alpine', 'latest', agent, 2, { authorization });
    const idle = await pullFor(mirror.url, agent, authorization, ATTACK_MS);
    const flood = runLoad<FloodOutcome>({ kind: 'password-flood', base: mirror.url, clients: ATTACKERS, durationMs: ATTACK_MS, user: USER, firstAddress: '127.0.2.1' }, ATTACK_MS + 60_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const attacked = await pullFor(mirror.url, agent, authorization, ATTACK_MS - 300);
    const attack = await flood;
    const median = (values: number[]) => percentile(values, 50) ?? NaN;
    const ratio = median(attacked.ms) / median(idle.ms);
    report.fact('authenticated pull, median ms idle / under attack', `${median(idle.ms).toFixed(1)} / ${median(attacked.ms).toFixed(1)} (${idle.ms.length} and ${attacked.ms.length} pulls)`);
    report.fact('what the attackers got', { requests: attack.requests, statuses: attack.statuses, errors: attack.errors });
    report.check('authenticated latency under the password attack within 2x of idle', ratio <= 2 && attacked.failures === 0, `ratio ${ratio.toFixed(2)}, ${attacked.failures} failed pulls`);
    report.check('the process survived the password attack', mirror.alive());
  } finally {
    agent.destroy();
    await mirror.stop();
    await upstream.close();
  }
}

async function pullFor(base: string, agent: Agent, authorization: string, durationMs: number): Promise<{ ms: number[]; failures: number }> {
  const result = { ms: [] as number[], failures: 0 };
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline) {
    try {
      result.ms.push((await pull(base, 'library/alpine', 'latest', agent, 2, { authorization })).ms);
    } catch {
      result.failures += 1;
    }
  }
  return result;
}
