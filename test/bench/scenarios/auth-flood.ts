/**
 * Client auth under a password flood (issue 12 item 6): a mirror of its own with auth.htpasswd
 * (bcrypt cost 10, as `htpasswd -B -C 10` writes), primed with library/alpine:3.20. An
 * authenticated client pulls that image (manifest, config, layer; digests verified) again and
 * again, first with the mirror idle, then while 20 other clients (load-client.ts, each from its
 * own loopback address, so the limits per address stop none of them early) send wrong
 * passwords for 6 s as fast as they are answered. Interleaved rounds (rounds.ts); reported: the
 * median pull time idle and under attack, their ratio (target <= 2x), what the attackers got
 * back, and one fresh login (a second user, never seen before) in the middle of each attack.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startMirror, type RunningMirror } from '../../interop/support/mirror.js';
import { HUB_PASSWORD, HUB_USER } from '../../interop/support/token-server.js';
import type { BenchContext } from '../context.js';
import { runLoad, type FloodOutcome } from '../load.js';
import { get, pull } from '../registry-client.js';
import { cdnHosts } from '../targets.js';
import { median } from '../rounds.js';
import { percentile, round } from '../stats.js';

const ATTACKERS = 20;
const ATTACK_S = 6;
const BCRYPT_COST = 10;
const USER = 'bench';
const PASSWORD = 'bench-password';
/** One user per round that logs in for the first time during the attack (late-1, late-2...). */
const FRESH_PASSWORD = 'late-password';
const MAX_ROUNDS = 3;
/** Attackers connect from 127.0.2.1 upwards; the honest client from 127.0.0.1. */
const FIRST_ATTACKER_ADDRESS = '127.0.2.1';

interface Phase {
  pullMs: number[];
  failures: string[];
}

export async function authFlood(context: BenchContext): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'registry-mirror-bench-auth-'));
  let mirror: RunningMirror | undefined;
  try {
    mirror = await startAuthMirror(dir, context);
    const authorization = basic(USER, PASSWORD);
    const { repo, tag } = context.env.small;
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    await pull(mirror.url, repo, tag, agent, 3, { authorization });
    const rounds = Math.min(MAX_ROUNDS, context.options.rounds);
    const results: Array<{ idle: Phase; attack: Phase; flood: FloodOutcome; fresh: { status: number; ms: number } }> = [];
    for (let index = 1; index <= rounds; index++) {
      context.log(`auth-flood: round ${index}/${rounds}: idle ${ATTACK_S} s, then ${ATTACKERS} wrong-password clients for ${ATTACK_S} s`);
      const idle = await pullFor(mirror.url, repo, tag, agent, authorization, ATTACK_S * 1000);
      const flood = runLoad<FloodOutcome>({ kind: 'password-flood', base: mirror.url, clients: ATTACKERS, durationMs: ATTACK_S * 1000, user: USER, firstAddress: FIRST_ATTACKER_ADDRESS }, ATTACK_S * 1000 + 60_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the child process starts
      const freshLogin = delayed(ATTACK_S * 500, () => timedLogin(mirror!.url, basic(`late-${index}`, FRESH_PASSWORD)));
      const attack = await pullFor(mirror.url, repo, tag, agent, authorization, ATTACK_S * 1000 - 300);
      results.push({ idle, attack, flood: await flood, fresh: await freshLogin });
    }
    agent.destroy();
    emitResult(context, results);
  } finally {
    await mirror?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function startAuthMirror(dir: string, context: BenchContext): Promise<RunningMirror> {
  const htpasswd = join(dir, 'htpasswd');
  const line = (user: string, password: string) => `${user}:${bcrypt.hashSync(password, BCRYPT_COST).replace(/^\$2b\$/, '$2y$')}`;
  const fresh = Array.from({ length: MAX_ROUNDS }, (_, i) => line(`late-${i + 1}`, FRESH_PASSWORD));
  writeFileSync(htpasswd, `${[line(USER, PASSWORD), ...fresh].join('\n')}\n`);
  const { env } = context;
  return startMirror(join(dir, 'mirror'), env.upstreams, {
    log: { level: 'warn' },
    auth: { htpasswd },
    upstreams: {
      'docker.io': { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD, tokenRealms: [`127.0.0.1:${env.upstreams.token.port}`], redirectHosts: cdnHosts(env) },
    },
  });
}

/** Pulls one after the other for `durationMs`; each pull's time, and failures by message. */
async function pullFor(base: string, repo: string, tag: string, agent: Agent, authorization: string, durationMs: number): Promise<Phase> {
  const phase: Phase = { pullMs: [], failures: [] };
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline) {
    try {
      phase.pullMs.push((await pull(base, repo, tag, agent, 3, { authorization })).ms);
    } catch (error) {
      phase.failures.push((error as Error).message.slice(0, 200));
    }
  }
  return phase;
}

async function timedLogin(base: string, authorization: string): Promise<{ status: number; ms: number }> {
  const agent = new Agent({ keepAlive: false });
  const started = performance.now();
  try {
    const response = await get(`${base}/v2/`, agent, { authorization });
    response.resume();
    return { status: response.statusCode ?? 0, ms: round(performance.now() - started, 1)! };
  } finally {
    agent.destroy();
  }
}

function delayed<T>(ms: number, run: () => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => setTimeout(() => run().then(resolve, reject), ms));
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function emitResult(context: BenchContext, results: Array<{ idle: Phase; attack: Phase; flood: FloodOutcome; fresh: { status: number; ms: number } }>): void {
  const p50 = (values: number[]) => round(median(values), 2);
  const p90 = (values: number[]) => round(percentile(values, 90), 2);
  const idle = results.flatMap((entry) => entry.idle.pullMs);
  const attack = results.flatMap((entry) => entry.attack.pullMs);
  const statuses: Record<string, number> = {};
  for (const { flood } of results) for (const [status, count] of Object.entries(flood.statuses)) statuses[status] = (statuses[status] ?? 0) + count;
  const ratios = results.map(({ idle, attack }) => (median(attack.pullMs) ?? NaN) / (median(idle.pullMs) ?? NaN));
  context.emit({
    bench: 'auth-flood',
    target: 'mirror',
    attackers: ATTACKERS,
    attack_s: ATTACK_S,
    bcrypt_cost: BCRYPT_COST,
    rounds: results.length,
    idle_pull_ms: { p50: p50(idle), p90: p90(idle), pulls: idle.length },
    attack_pull_ms: { p50: p50(attack), p90: p90(attack), pulls: attack.length },
    round_p50_ms: results.map((entry) => ({ idle: p50(entry.idle.pullMs), attack: p50(entry.attack.pullMs) })),
    attack_vs_idle: round(median(ratios), 2),
    pull_failures: results.flatMap((entry) => [...entry.idle.failures, ...entry.attack.failures]),
    attacker_requests: results.reduce((sum, entry) => sum + entry.flood.requests, 0),
    attacker_statuses: statuses,
    attacker_errors: results.reduce((sum, entry) => sum + entry.flood.errors, 0),
    fresh_login_during_attack: results.map((entry) => entry.fresh),
  });
}
