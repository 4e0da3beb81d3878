/**
 * Leases on a real redis-server, each "replica" with its own connections: one holder per key,
 * the loser learns the owner, the holder keeps the lease past its TTL while alive, a release
 * never deletes someone else's lease, waiters hear the outcome (or find the lease gone by
 * polling when the message is lost), a SIGKILLed holder's lease expires within its TTL, and
 * with Redis down every call fails at once with CoordinationUnavailableError.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CoordinationOptionError, CoordinationUnavailableError } from '../../src/coordination/coordination-errors.js';
import { RedisCoordination } from '../../src/coordination/redis-coordination.js';
import { RedisLeases } from '../../src/coordination/redis-leases.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { Replicas, eventually, sleep, startChildReplica } from './coordination-fixture.js';

describe('Redis coordination options', () => {
  it('names the option and the value received, and never prints a password', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ url: 'http://user:secret@127.0.0.1:1' }, 'expected url to be a redis:// or rediss:// URL, got "http://user:***@127.0.0.1:1"'],
      [{ url: 'redis://127.0.0.1:1', commandTimeoutMs: 0 }, 'expected commandTimeoutMs to be an integer of at least 1, got 0'],
    ];
    for (const [options, message] of cases) {
      const error = (() => {
        try {
          return new RedisCoordination(options as never);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(CoordinationOptionError);
      expect((error as Error).message).toBe(message);
    }
  });
});

describe.skipIf(!redisServerInstalled())('Redis leases against a real redis-server', () => {
  let server: RedisServer;
  let admin: Redis;
  let keyPrefix: string;
  const replicas = new Replicas();
  const open = () => replicas.open({ url: server.url, keyPrefix });

  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
  });
  beforeEach(() => {
    keyPrefix = `leases-${randomUUID()}:`;
  });
  afterEach(() => replicas.closeAll());
  afterAll(async () => {
    admin.disconnect();
    await server?.stop();
  });

  it('one holder per key: the loser learns the owner; another key is free; the lease lives under the prefix with a TTL', async () => {
    const [a, b] = [await open(), await open()];
    const won = await a.leases.acquire('blob:sha256:1', 'http://replica-a:5000', 2_000);
    const lost = await b.leases.acquire('blob:sha256:1', 'http://replica-b:5000', 2_000);
    expect(won.acquired).toBe(true);
    expect(lost).toMatchObject({ acquired: false, owner: 'http://replica-a:5000' });
    expect(await b.leases.ownerOf('blob:sha256:1')).toBe('http://replica-a:5000');
    expect((await b.leases.acquire('blob:sha256:2', 'http://replica-b:5000', 2_000)).acquired).toBe(true);
    const ttl = await admin.pttl(`${keyPrefix}lease:blob:sha256:1`);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(2_000);
    if (won.acquired) expect(await won.lease.release('ok')).toBe(true);
    expect(await b.leases.ownerOf('blob:sha256:1')).toBeUndefined();
  });

  it('the holder refreshes its lease while it works: alive after three TTLs, gone once released', async () => {
    const a = await open();
    const claim = await a.leases.acquire('k', 'a', 300);
    await sleep(900);
    expect(await a.leases.ownerOf('k')).toBe('a');
    if (claim.acquired) await claim.lease.release('ok');
    expect(await admin.exists(`${keyPrefix}lease:k`)).toBe(0);
  });

  it('a release after the lease expired and went to another replica deletes nothing and announces nothing', async () => {
    const [a, b] = [await open(), await open()];
    const claim = await a.leases.acquire('k', 'a', 300);
    if (!claim.acquired) throw new Error('expected the lease');
    // A stall longer than the TTL: the refresh timer cannot run, the lease expires, b takes it.
    await admin.del(`${keyPrefix}lease:k`);
    const taken = await b.leases.acquire('k', 'b', 5_000);
    expect(taken.acquired).toBe(true);
    // a's next refresh (every ttl/3) finds the lease someone else's.
    await sleep(250);
    expect(claim.lease.lost).toBe(true);
    const heard: string[] = [];
    a.connection.listen(a.connection.leaseReleasedChannel, (message) => heard.push(message));
    expect(await claim.lease.release('ok')).toBe(false);
    await sleep(100);
    expect(heard).toEqual([]);
    expect(await a.leases.ownerOf('k')).toBe('b');
  });

  it('waiters in other replicas hear the outcome, ok or failed', async () => {
    const [a, b, c] = [await open(), await open(), await open()];
    for (const outcome of ['ok', 'failed'] as const) {
      const claim = await a.leases.acquire('k', 'a', 5_000);
      if (!claim.acquired) throw new Error('expected the lease');
      const [lostB, lostC] = [await b.leases.acquire('k', 'b', 5_000), await c.leases.acquire('k', 'c', 5_000)];
      if (lostB.acquired || lostC.acquired) throw new Error('expected the lease to be held');
      const waits = [b.leases.waitForRelease('k', { observed: lostB.value }), c.leases.waitForRelease('k', { observed: lostC.value })];
      await sleep(50);
      await claim.lease.release(outcome);
      expect(await Promise.all(waits)).toEqual([outcome, outcome]);
    }
  });

  it('a lost message: the waiter still finds the lease gone by polling; a timeout ends a wait on a live holder', async () => {
    const [a, b] = [await open(), await open()];
    const claim = await a.leases.acquire('k', 'a', 5_000);
    const lost = await b.leases.acquire('k', 'b', 5_000);
    if (!claim.acquired || lost.acquired) throw new Error('expected a to hold the lease');
    expect(await b.leases.waitForRelease('k', { observed: lost.value, timeoutMs: 300 })).toBe('timeout');
    const wait = b.leases.waitForRelease('k', { observed: lost.value });
    await admin.del(`${keyPrefix}lease:k`);
    expect(await wait).toBe('gone');
    await claim.lease.release('ok');
  });

  it('a holder killed with SIGKILL stops refreshing: its lease is gone within its TTL, and another replica takes it', async () => {
    const owner = startChildReplica(['flight', server.url, keyPrefix, 'blob:sha256:9', '1000']);
    try {
      expect(await owner.started).toBe('owning');
      const b = await open();
      expect(await b.leases.ownerOf('blob:sha256:9')).toBe('child-replica');
      await sleep(2_000);
      expect(await b.leases.ownerOf('blob:sha256:9')).toBe('child-replica');
      const lost = await b.leases.acquire('blob:sha256:9', 'b', 5_000);
      if (lost.acquired) throw new Error('expected the child to hold the lease');
      await owner.kill();
      const killedAt = Date.now();
      expect(await b.leases.waitForRelease('blob:sha256:9', { observed: lost.value, timeoutMs: 10_000 })).toBe('gone');
      // The last refresh came at most a third of the TTL before the kill; the poll runs every 100 ms.
      expect(Date.now() - killedAt).toBeLessThan(2_000);
      expect((await b.leases.acquire('blob:sha256:9', 'b', 5_000)).acquired).toBe(true);
    } finally {
      await owner.kill();
    }
  });

  it('with Redis down, acquire and waits reject at once with CoordinationUnavailableError; they work again when it is back', async () => {
    const a = await open();
    await server.stop();
    try {
      const started = performance.now();
      const error = await a.leases.acquire('k', 'a', 1_000).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CoordinationUnavailableError);
      expect((error as Error).message).toContain(`Redis at 127.0.0.1:${server.port} is unavailable`);
      await expect(a.leases.waitForRelease('k', { observed: 'x' })).rejects.toBeInstanceOf(CoordinationUnavailableError);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await server.restart();
    }
    await eventually(async () => (await a.leases.acquire('k', 'a', 1_000)).acquired, 10_000, 'acquire working again');
    // a's subscriber connection subscribes again by itself: outcomes reach a as messages again
    // (a poll would say 'gone', not 'ok').
    const b = await open();
    await eventually(async () => {
      const claim = await b.leases.acquire('k2', 'b', 5_000);
      const lost = await a.leases.acquire('k2', 'a', 5_000);
      if (!claim.acquired || lost.acquired) return false;
      const wait = a.leases.waitForRelease('k2', { observed: lost.value });
      await sleep(20);
      await claim.lease.release('ok');
      return (await wait) === 'ok';
    }, 10_000, 'release messages arriving again');
  });
});

if (!redisServerInstalled()) {
  describe('Redis leases against a real redis-server', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
}
