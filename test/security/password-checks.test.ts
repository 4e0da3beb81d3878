/**
 * The password checks behind auth.htpasswd under attack (issue 12 item 6): how many bcrypt
 * comparisons a flood can cause, what is remembered, and that comparisons never run on the event
 * loop. Comparisons are counted through an injected comparer, never inferred from timing.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import bcrypt from 'bcryptjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ClientRateLimitedError, ServerBusyError } from '../../src/domain/errors.js';
import { BcryptWorkerPool, type PasswordComparer } from '../../src/http/bcrypt-worker-pool.js';
import { Htpasswd } from '../../src/http/htpasswd.js';
import { LocalFlights } from '../../src/coordination/flights.js';

const LIMITS = { perClient: 5, perUser: 20, windowMs: 60_000 };
/** Cost 4: the checks below count comparisons, they do not need slow ones. */
const HASH = bcrypt.hashSync('right', 4);

/** The real comparison, counted; `gate` holds every comparison until released. */
class CountingComparer implements PasswordComparer {
  calls = 0;
  #release: (() => void) | undefined;
  #gate: Promise<void> | undefined;

  hold(): void {
    this.#gate = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release?.();
    this.#gate = undefined;
  }

  readonly urgent: boolean[] = [];

  async compare(password: string, hash: string, options: { urgent?: boolean } = {}): Promise<boolean> {
    this.calls += 1;
    this.urgent.push(options.urgent === true);
    await this.#gate;
    return bcrypt.compareSync(password, hash);
  }
}

function users(...names: string[]): Map<string, string> {
  return new Map(names.map((name) => [name, HASH]));
}

async function outcome(check: Promise<boolean>): Promise<boolean | string> {
  try {
    return await check;
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

describe('password checks under a flood', () => {
  it('limits wrong passwords per client address: concurrent guesses past the limit are refused without a comparison', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice'), { comparer, failureLimits: LIMITS });
    comparer.hold();
    const guesses = Array.from({ length: 30 }, (_, i) => outcome(htpasswd.verify('alice', `guess-${i}`, '192.0.2.1')));
    comparer.release();
    const results = await Promise.all(guesses);
    expect(results.filter((result) => result === false)).toHaveLength(5);
    expect(results.filter((result) => result === 'ClientRateLimitedError')).toHaveLength(25);
    expect(comparer.calls).toBe(5);
    // The limit holds afterwards, for the right password too (from that address, for a while).
    await expect(htpasswd.verify('alice', 'right', '192.0.2.1')).rejects.toBeInstanceOf(ClientRateLimitedError);
    expect(comparer.calls).toBe(5);
  });

  it('tells the client when to come back (Retry-After within the window)', async () => {
    const htpasswd = new Htpasswd(users('alice'), { comparer: new CountingComparer(), failureLimits: LIMITS });
    for (let i = 0; i < 5; i++) expect(await htpasswd.verify('alice', `guess-${i}`, '192.0.2.1')).toBe(false);
    const error = await htpasswd.verify('alice', 'guess-5', '192.0.2.1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ClientRateLimitedError);
    expect((error as ClientRateLimitedError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect((error as ClientRateLimitedError).retryAfterSeconds).toBeLessThanOrEqual(60);
  });

  it('limits wrong passwords per user across addresses, and still lets other users log in from other addresses', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice', 'bob'), { comparer, failureLimits: LIMITS });
    const results = [];
    // 10 addresses, 5 guesses each: 50 guesses at alice, only 20 may cost a comparison.
    for (let address = 1; address <= 10; address++) {
      for (let i = 0; i < 5; i++) results.push(await outcome(htpasswd.verify('alice', `guess-${address}-${i}`, `198.51.100.${address}`)));
    }
    expect(results.filter((result) => result === false)).toHaveLength(20);
    expect(comparer.calls).toBe(20);
    expect(await outcome(htpasswd.verify('alice', 'right', '203.0.113.9'))).toBe('ClientRateLimitedError');
    expect(await htpasswd.verify('bob', 'right', '203.0.113.7')).toBe(true);
    expect(comparer.calls).toBe(21);
  });

  it('keeps serving a remembered success while its user is under attack', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice'), { comparer, failureLimits: LIMITS });
    expect(await htpasswd.verify('alice', 'right', '203.0.113.5')).toBe(true);
    for (let address = 1; address <= 5; address++) {
      for (let i = 0; i < 5; i++) await outcome(htpasswd.verify('alice', `guess-${address}-${i}`, `198.51.100.${address}`));
    }
    const callsAfterFlood = comparer.calls;
    expect(await htpasswd.verify('alice', 'right', '203.0.113.5')).toBe(true);
    expect(comparer.calls).toBe(callsAfterFlood);
  });

  it('does not count a right password as a failure', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice'), { comparer, failureLimits: LIMITS, rememberMs: 1 });
    for (let i = 0; i < 20; i++) {
      expect(await htpasswd.verify('alice', 'right', '192.0.2.1')).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(comparer.calls).toBe(20);
  });

  it('marks checks from addresses without recent failures as urgent, so a flood cannot make them wait', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice', 'bob'), { comparer, failureLimits: LIMITS });
    expect(await htpasswd.verify('alice', 'guess-1', '192.0.2.1')).toBe(false);
    expect(await htpasswd.verify('alice', 'guess-2', '192.0.2.1')).toBe(false);
    expect(await htpasswd.verify('bob', 'right', '192.0.2.2')).toBe(true);
    expect(await htpasswd.verify('alice', 'right', '192.0.2.3')).toBe(true);
    expect(comparer.urgent).toEqual([true, false, true, true]);
  });

  it('runs one comparison for identical concurrent checks, and they count as one failure', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice'), { comparer, failureLimits: LIMITS });
    comparer.hold();
    const checks = Array.from({ length: 10 }, () => outcome(htpasswd.verify('alice', 'wrong', '192.0.2.1')));
    comparer.release();
    expect(await Promise.all(checks)).toEqual(Array(10).fill(false));
    expect(comparer.calls).toBe(1);
    for (let i = 0; i < 4; i++) expect(await htpasswd.verify('alice', `other-${i}`, '192.0.2.1')).toBe(false);
    expect(comparer.calls).toBe(5);
  });

  it('joins identical checks through the Flights it is given (issue 13 item 5), keyed without the password', async () => {
    const comparer = new CountingComparer();
    const flights = new LocalFlights();
    const keys: string[] = [];
    const run = flights.run.bind(flights);
    flights.run = (key, work, options) => {
      keys.push(key);
      return run(key, work, options);
    };
    const htpasswd = new Htpasswd(users('alice'), { comparer, failureLimits: LIMITS, flights });
    comparer.hold();
    const checks = Array.from({ length: 5 }, () => outcome(htpasswd.verify('alice', 'secret-guess', '192.0.2.1')));
    expect(flights.size).toBe(1);
    comparer.release();
    expect(await Promise.all(checks)).toEqual(Array(5).fill(false));
    expect(comparer.calls).toBe(1);
    expect(keys).toHaveLength(5);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).not.toContain('secret-guess');
    expect(keys[0]).not.toContain('alice');
    expect(flights.size).toBe(0);
  });

  it('remembers successes by a keyed hash: a user/password split elsewhere is a different key', async () => {
    const comparer = new CountingComparer();
    const hashes = new Map([['a', bcrypt.hashSync('\0b', 4)], ['a\0', HASH]]);
    const htpasswd = new Htpasswd(hashes, { comparer, failureLimits: LIMITS });
    expect(await htpasswd.verify('a', '\0b', '192.0.2.1')).toBe(true);
    expect(await htpasswd.verify('a\0', 'b', '192.0.2.1')).toBe(false);
    expect(comparer.calls).toBe(2);
  });

  it('bounds what it remembers by entries and time', async () => {
    const comparer = new CountingComparer();
    const htpasswd = new Htpasswd(users('alice', 'bob', 'carol'), { comparer, failureLimits: LIMITS, rememberMs: 50, rememberMax: 2 });
    for (const user of ['alice', 'bob', 'carol']) expect(await htpasswd.verify(user, 'right', '192.0.2.1')).toBe(true);
    expect(comparer.calls).toBe(3);
    expect(await htpasswd.verify('alice', 'right', '192.0.2.1')).toBe(true); // evicted by carol
    expect(comparer.calls).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await htpasswd.verify('alice', 'right', '192.0.2.1')).toBe(true); // expired
    expect(comparer.calls).toBe(5);
  });

  it('keeps the limiter state bounded', async () => {
    const htpasswd = new Htpasswd(users('alice'), { comparer: { compare: async () => false }, failureLimits: { ...LIMITS, maxTracked: 100 } });
    for (let i = 0; i < 1000; i++) await outcome(htpasswd.verify(`user-${i}`, 'wrong', `10.0.${i >> 8}.${i & 255}`));
    expect(htpasswd.trackedFailureKeys).toBeLessThanOrEqual(200);
  });
});

describe('the bcrypt worker pool', () => {
  const pools: BcryptWorkerPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
  });

  it('compares like bcrypt does, $2y$ hashes as htpasswd -B writes them included', async () => {
    const pool = new BcryptWorkerPool();
    pools.push(pool);
    expect(await pool.compare('right', HASH)).toBe(true);
    expect(await pool.compare('right', HASH.replace(/^\$2b\$/, '$2y$'))).toBe(true);
    expect(await pool.compare('wrong', HASH)).toBe(false);
    expect(await pool.compare('right', 'not a hash')).toBe(false);
  });

  it('refuses work beyond its queue with ServerBusyError (503 with Retry-After)', async () => {
    const pool = new BcryptWorkerPool({ workers: 1, maxQueued: 2 });
    pools.push(pool);
    const checks = Array.from({ length: 8 }, (_, i) => pool.compare(`guess-${i}`, HASH).catch((error: unknown) => error));
    const results = await Promise.all(checks);
    expect(results.filter((result) => result === false)).toHaveLength(3);
    const refused = results.filter((result) => result instanceof ServerBusyError) as ServerBusyError[];
    expect(refused).toHaveLength(5);
    expect(refused.every((error) => error.retryAfterSeconds >= 1)).toBe(true);
    // Once the queue drained, work is taken again.
    expect(await pool.compare('right', HASH)).toBe(true);
  });

  it('takes urgent checks first, and makes room for them by refusing the newest other check', async () => {
    const pool = new BcryptWorkerPool({ workers: 1, maxQueued: 2 });
    pools.push(pool);
    const finished: string[] = [];
    const check = (name: string, urgent: boolean) => pool.compare(name, HASH, { urgent }).then(
      () => finished.push(name),
      (error: unknown) => finished.push(`${name}: ${(error as Error).constructor.name}`),
    );
    const checks = [check('running', false), check('queued-1', false), check('queued-2', false), check('urgent', true)];
    await Promise.all(checks);
    expect(finished).toEqual(['queued-2: ServerBusyError', 'running', 'urgent', 'queued-1']);
    // A queue full of urgent checks refuses the next urgent one.
    const more = [check('u1', true), check('u2', true), check('u3', true), check('u4', true)];
    await Promise.all(more);
    expect(finished.slice(4)).toEqual(['u4: ServerBusyError', 'u1', 'u2', 'u3']);
  });

  it.runIf(process.platform === 'linux')('runs comparisons in threads of lower priority than the event loop (Linux)', async () => {
    const niceOf = (stat: string) => Number(stat.split(') ')[1]!.split(' ')[16]);
    const processNice = niceOf(readFileSync('/proc/self/stat', 'utf8'));
    const nicerThreads = () => readdirSync('/proc/self/task').filter((tid) => niceOf(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')) > processNice).length;
    const before = nicerThreads();
    const pool = new BcryptWorkerPool({ workers: 2 });
    pools.push(pool);
    await Promise.all([pool.compare('right', HASH), pool.compare('right', HASH)]);
    expect(nicerThreads() - before).toBe(processNice < 19 ? 2 : 0);
  });

  it('never runs a comparison on the event loop', async () => {
    // Cost 9: about 40 ms per comparison in bcryptjs, 2 s for the 50 below on the event loop.
    // Event-loop utilisation (active time outside the poll phase) measures what the loop
    // itself ran: it stays low when the process is merely descheduled under CPU load, so
    // this holds on a busy machine where a timer's jitter would not.
    const slow = bcrypt.hashSync('right', 9);
    const htpasswd = new Htpasswd(new Map(Array.from({ length: 50 }, (_, i) => [`user-${i}`, slow])), { comparer: new BcryptWorkerPool({ maxQueued: 50 }), failureLimits: LIMITS });
    try {
      const before = performance.eventLoopUtilization();
      const started = performance.now();
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => htpasswd.verify(`user-${i}`, 'wrong', `192.0.2.${i}`)));
      const elapsed = performance.now() - started;
      const loop = performance.eventLoopUtilization(before);
      expect(results.every((ok) => ok === false)).toBe(true);
      expect(loop.active, `event loop active ${loop.active.toFixed(0)} ms of ${elapsed.toFixed(0)} ms`).toBeLessThan(Math.max(100, elapsed * 0.2));
    } finally {
      await htpasswd.close();
    }
  });
});
