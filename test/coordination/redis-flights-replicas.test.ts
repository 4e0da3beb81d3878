/**
 * RedisFlights across replicas (each with its own Redis connections, one a real child process):
 * one owner runs the work per key while the others wait and run it after, finding the shared
 * state; a failed owner is replaced by exactly one waiter; a SIGKILLed owner's flight is taken
 * over once its lease expires; and when Redis dies or hangs mid-flight every caller still gets
 * an outcome, with one log line per outage and coordination again once Redis is back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RedisFlights } from '../../src/coordination/redis-flights.js';
import { RedisLeases } from '../../src/coordination/redis-leases.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { Replicas, deferred, eventually, sleep, startChildReplica, type Replica } from './coordination-fixture.js';

const DEADLINE = { deadlineMs: 30_000 };

/** Stands for the shared content store: what the owner leaves, the late runs find. */
class SharedState {
  readonly stored = new Map<string, string>();
  upstreamFetches = 0;
  lateRuns = 0;
  readonly fetchEnds: number[] = [];
  readonly lateRunStarts: number[] = [];

  /** A work that looks at the shared state first, as the Flights contract asks. */
  work(key: string, fetch: () => Promise<string>) {
    return async () => {
      const found = this.stored.get(key);
      if (found !== undefined) {
        this.lateRuns += 1;
        this.lateRunStarts.push(performance.now());
        return found;
      }
      this.upstreamFetches += 1;
      const value = await fetch();
      this.stored.set(key, value);
      this.fetchEnds.push(performance.now());
      return value;
    };
  }
}

describe.skipIf(!redisServerInstalled())('RedisFlights across replicas', () => {
  let server: RedisServer;
  let keyPrefix: string;
  const replicas = new Replicas();
  const open = (options: { commandTimeoutMs?: number } = {}) => replicas.open({ url: server.url, keyPrefix, ...options });
  const three = async (): Promise<[Replica, Replica, Replica]> => [await open(), await open(), await open()];

  beforeAll(async () => {
    server = await startRedisServer();
  });
  beforeEach(() => {
    keyPrefix = `flights-${randomUUID()}:`;
  });
  afterEach(async () => {
    server.resume();
    await replicas.closeAll();
  });
  afterAll(() => server?.stop());

  it('three replicas, five callers each: one upstream fetch; the other replicas run the work after it, and find its result', async () => {
    const shared = new SharedState();
    const upstream = deferred<string>();
    const work = shared.work('blob', () => upstream.promise);
    const callers = (await three()).flatMap((replica) => Array.from({ length: 5 }, () => replica.flights.run('blob:sha256:1', work, DEADLINE)));
    await sleep(300);
    expect(shared.upstreamFetches).toBe(1);
    expect(shared.lateRuns).toBe(0);
    upstream.resolve('the bytes');
    expect(await Promise.all(callers)).toEqual(Array(15).fill('the bytes'));
    expect(shared.upstreamFetches).toBe(1);
    expect(shared.lateRuns).toBe(2);
    for (const start of shared.lateRunStarts) expect(start).toBeGreaterThanOrEqual(shared.fetchEnds[0]!);
  });

  it('hold across replicas: the others wait until the owner\'s value settles (the download ends), not just until it is returned', async () => {
    const shared = new SharedState();
    const landed = deferred<void>();
    const [a, b] = [await open(), await open()];
    const fill = async () => {
      if (shared.stored.has('blob')) return { source: 'store', settled: Promise.resolve() };
      shared.upstreamFetches += 1;
      void landed.promise.then(() => shared.stored.set('blob', 'bytes'));
      return { source: 'upstream', settled: landed.promise };
    };
    const owner = await a.flights.hold('blob:sha256:2', fill, DEADLINE);
    const waiter = b.flights.hold('blob:sha256:2', fill, DEADLINE);
    await sleep(300);
    expect(owner.source).toBe('upstream');
    landed.resolve();
    expect((await waiter).source).toBe('store');
    expect(shared.upstreamFetches).toBe(1);
  });

  it('the owner fails: exactly one waiting replica runs the work again, the third finds its result', async () => {
    const shared = new SharedState();
    const [a, b, c] = await three();
    const failing = deferred<string>();
    let attempts = 0;
    const fetch = () => (++attempts === 1 ? failing.promise : sleep(100).then(() => 'second try'));
    const work = shared.work('manifest', fetch);
    const first = a.flights.run('manifest:x', work, DEADLINE);
    await sleep(100);
    const waiters = [b.flights.run('manifest:x', work, DEADLINE), c.flights.run('manifest:x', work, DEADLINE)];
    await sleep(100);
    failing.reject(new Error('upstream 503'));
    await expect(first).rejects.toThrow('upstream 503');
    expect(await Promise.all(waiters)).toEqual(['second try', 'second try']);
    expect(attempts).toBe(2);
    expect(shared.lateRuns).toBe(1);
  });

  it('an owner killed with SIGKILL: the waiting replica does not run while the owner lives, and takes over once its lease expires', async () => {
    const owner = startChildReplica(['flight', server.url, keyPrefix, 'blob:sha256:3', '1000']);
    try {
      expect(await owner.started).toBe('owning');
      const b = await open();
      expect(await b.leases.ownerOf('blob:sha256:3')).toBe('child-replica');
      let runs = 0;
      const waiter = b.flights.run('blob:sha256:3', async () => ++runs, DEADLINE);
      // Three lease TTLs: the live owner keeps refreshing, so nobody takes over.
      await sleep(3_000);
      expect(runs).toBe(0);
      await owner.kill();
      const killedAt = Date.now();
      expect(await waiter).toBe(1);
      expect(Date.now() - killedAt).toBeLessThan(2_000);
    } finally {
      await owner.kill();
    }
  });

  it('the deadline covers waiting for another replica\'s flight', async () => {
    const [a, b] = [await open(), await open()];
    const never = a.flights.run('k', () => new Promise<never>(() => {}), { deadlineMs: 5_000 });
    never.catch(() => {});
    await sleep(100);
    let runs = 0;
    const started = performance.now();
    await expect(b.flights.run('k', async () => ++runs, { deadlineMs: 300 })).rejects.toMatchObject({ code: 'UNAVAILABLE', name: 'DeadlineExceededError' });
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(runs).toBe(0);
  });

  it('Redis killed mid-flight: the owner and the waiter both get an outcome; one warning each; coordination resumes when Redis is back', async () => {
    const [a, b] = [await open(), await open()];
    const gate = deferred<string>();
    const owned = a.flights.run('k', () => gate.promise, DEADLINE);
    await sleep(100);
    let waiterRuns = 0;
    const waiting = b.flights.run('k', async () => `waiter ran ${++waiterRuns}`, DEADLINE);
    await sleep(100);
    await server.stop();
    expect(await waiting).toBe('waiter ran 1');
    gate.resolve('owner ran');
    expect(await owned).toBe('owner ran');
    const whileDown = await Promise.all([a.flights.run('k2', async () => 'local a', DEADLINE), b.flights.run('k2', async () => 'local b', DEADLINE)]);
    expect(whileDown).toEqual(['local a', 'local b']);
    for (const replica of [a, b]) expect(replica.log.warnings).toEqual(['flights: Redis is unreachable, each process runs its own flights until it is back']);

    await server.restart();
    // Once reconnected, one flight a second tries Redis again; the first that reaches it says so.
    for (const replica of [a, b]) {
      await eventually(async () => (await replica.flights.run('probe', async () => 0, DEADLINE), replica.log.infos.length > 0), 10_000, 'coordinating again');
    }
    const shared = new SharedState();
    const upstream = deferred<string>();
    const work = shared.work('k3', () => upstream.promise);
    const afterOutage = [a.flights.run('k3', work, DEADLINE), b.flights.run('k3', work, DEADLINE)];
    await sleep(200);
    upstream.resolve('coordinated');
    expect(await Promise.all(afterOutage)).toEqual(['coordinated', 'coordinated']);
    expect(shared.upstreamFetches).toBe(1);
    for (const replica of [a, b]) expect(replica.log.infos).toEqual(['flights: Redis is back, coordinating across processes again']);
  });

  it('Redis down from the start: flights run at once, within the process only', async () => {
    await server.stop();
    try {
      const connection = replicas.connect({ url: server.url, keyPrefix });
      const flights = new RedisFlights({ leases: new RedisLeases(connection), owner: 'a' });
      let runs = 0;
      const gate = deferred<void>();
      const started = performance.now();
      const callers = [flights.run('k', async () => (await gate.promise, ++runs), DEADLINE), flights.run('k', async () => ++runs, DEADLINE)];
      gate.resolve();
      expect(await Promise.all(callers)).toEqual([1, 1]);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await server.restart();
    }
  });

  it('a hung Redis (connected, never answering): the first flight runs locally after commandTimeoutMs; the next ones do not wait for Redis again', async () => {
    const a = await open({ commandTimeoutMs: 300 });
    server.pause();
    let started = performance.now();
    expect(await a.flights.run('k', async () => 'ran', DEADLINE)).toBe('ran');
    const first = performance.now() - started;
    started = performance.now();
    expect(await Promise.all([a.flights.run('k2', async () => 'ran', DEADLINE), a.flights.run('k3', async () => 'ran', DEADLINE)])).toEqual(['ran', 'ran']);
    const next = performance.now() - started;
    server.resume();
    expect(first).toBeGreaterThanOrEqual(250);
    expect(first).toBeLessThan(5_000);
    expect(next).toBeLessThan(100);
    expect(a.log.warnings).toHaveLength(1);
    await eventually(async () => (await a.flights.run('k4', async () => 'ran', DEADLINE), a.log.infos.length === 1), 10_000, 'coordinating again');
  });
});

if (!redisServerInstalled()) {
  describe('RedisFlights across replicas', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
}
