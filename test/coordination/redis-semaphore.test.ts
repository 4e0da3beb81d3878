/**
 * The fleet-wide upstream bound on a real redis-server, counted where it matters: at a real HTTP
 * upstream (port 0) that records how many requests it serves at once. Several semaphores, each
 * with its own connections, stand for replicas; one is a child process killed with SIGKILL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamQueueFullError } from '../../src/coordination/coordination-errors.js';
import { RedisSemaphore } from '../../src/coordination/redis-semaphore.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { RecordingLog, Replicas, deferred, eventually, sleep, startChildReplica } from './coordination-fixture.js';

/** An upstream that answers after `delayMs` and remembers the most requests it had in flight. */
class CountingUpstream {
  inFlight = 0;
  maxInFlight = 0;
  served = 0;
  readonly server: Server = createServer((request, response) => {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    setTimeout(() => {
      this.inFlight -= 1;
      this.served += 1;
      response.end(`blob ${request.url}`);
    }, this.delayMs);
  });

  constructor(private readonly delayMs: number) {}

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe.skipIf(!redisServerInstalled())('RedisSemaphore: the upstream bound across replicas', () => {
  let server: RedisServer;
  let keyPrefix: string;
  let upstream: CountingUpstream;
  let upstreamUrl: string;
  const replicas = new Replicas();
  const semaphore = async (options: { maxConcurrent: number; slotTtlMs?: number; maxQueued?: number; log?: RecordingLog; wait?: boolean }) => {
    const redis = replicas.connect({ url: server.url, keyPrefix });
    if (options.wait !== false) await redis.ready(10_000);
    return new RedisSemaphore({ redis, pollIntervalMs: 50, ...options });
  };
  const get = async (path: string) => (await fetch(`${upstreamUrl}${path}`)).text();

  beforeAll(async () => {
    server = await startRedisServer();
  });
  beforeEach(async () => {
    keyPrefix = `slots-${randomUUID()}:`;
    upstream = new CountingUpstream(100);
    upstreamUrl = await upstream.listen();
  });
  afterEach(async () => {
    await replicas.closeAll();
    await upstream.close();
  });
  afterAll(() => server?.stop());

  it('three replicas, four fetches each, a bound of 2: the upstream never sees more than 2 at once, and every fetch completes', async () => {
    const fleet = [await semaphore({ maxConcurrent: 2 }), await semaphore({ maxConcurrent: 2 }), await semaphore({ maxConcurrent: 2 })];
    const fetches = fleet.flatMap((replica, r) => Array.from({ length: 4 }, (_, i) => replica.run('docker.io', () => get(`/r${r}/${i}`))));
    const bodies = await Promise.all(fetches);
    expect(bodies).toEqual(fleet.flatMap((_, r) => Array.from({ length: 4 }, (__, i) => `blob /r${r}/${i}`)));
    expect(upstream.served).toBe(12);
    expect(upstream.maxInFlight).toBe(2);
  });

  it('upstreams are bounded apart: a full docker.io does not hold up ghcr.io', async () => {
    const [a, b] = [await semaphore({ maxConcurrent: 1 }), await semaphore({ maxConcurrent: 1 })];
    const gate = deferred<void>();
    const holding = a.run('docker.io', () => gate.promise);
    await sleep(100);
    expect(await b.run('ghcr.io', () => get('/other'))).toBe('blob /other');
    gate.resolve();
    await holding;
  });

  it('a holder refreshes its slot: a fetch longer than three slot TTLs keeps it, and the next one starts only after it', async () => {
    const [a, b] = [await semaphore({ maxConcurrent: 1, slotTtlMs: 300 }), await semaphore({ maxConcurrent: 1, slotTtlMs: 300 })];
    let firstEnded = 0;
    const first = a.run('docker.io', async () => {
      await sleep(1_000);
      firstEnded = performance.now();
    });
    await sleep(50);
    let secondStarted = 0;
    await b.run('docker.io', async () => void (secondStarted = performance.now()));
    await first;
    expect(secondStarted).toBeGreaterThanOrEqual(firstEnded);
  });

  it('a replica killed with SIGKILL while holding every slot: its slots are reclaimed within their TTL', async () => {
    const child = startChildReplica(['slots', server.url, keyPrefix, 'docker.io', '2', '1000']);
    try {
      expect(await child.started).toBe('holding');
      const b = await semaphore({ maxConcurrent: 2, slotTtlMs: 1_000 });
      let started = 0;
      const fetches = [b.run('docker.io', async () => ++started), b.run('docker.io', async () => ++started)];
      // Two slot TTLs: the live child keeps refreshing its slots.
      await sleep(2_000);
      expect(started).toBe(0);
      expect(b.stats('docker.io')).toEqual({ active: 0, queued: 2 });
      await child.kill();
      const killedAt = Date.now();
      await Promise.all(fetches);
      expect(started).toBe(2);
      expect(Date.now() - killedAt).toBeLessThan(2_000);
    } finally {
      await child.kill();
    }
  });

  it('a bounded queue of its own: beyond maxQueued waiting fetches, run rejects with UpstreamQueueFullError (503)', async () => {
    const a = await semaphore({ maxConcurrent: 1, maxQueued: 2 });
    const gate = deferred<void>();
    const admitted = [a.run('docker.io', () => gate.promise), a.run('docker.io', () => gate.promise), a.run('docker.io', () => gate.promise)];
    const refused = await a.run('docker.io', async () => 'ran').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UpstreamQueueFullError);
    expect((refused as UpstreamQueueFullError).code).toBe('UNAVAILABLE');
    expect((refused as Error).message).toBe('2 fetches from docker.io are already waiting for one of its 1 slots');
    await sleep(100);
    expect(a.stats('docker.io')).toEqual({ active: 1, queued: 2 });
    gate.resolve();
    await Promise.all(admitted);
    expect(a.stats('docker.io')).toEqual({ active: 0, queued: 0 });
    expect(await a.run('docker.io', async () => 'ran')).toBe('ran');
  });

  it('with Redis down: fetches run at once under the local bound, one warning; the fleet bound is back when Redis is', async () => {
    const log = new RecordingLog();
    const a = await semaphore({ maxConcurrent: 2, log });
    await server.stop();
    try {
      const started = performance.now();
      const bodies = await Promise.all(Array.from({ length: 6 }, (_, i) => a.run('docker.io', () => get(`/${i}`))));
      expect(bodies).toHaveLength(6);
      expect(upstream.maxInFlight).toBe(2);
      // Six fetches of 100 ms, two at a time: three rounds; no time lost waiting for Redis.
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(log.warnings).toEqual(['upstream concurrency bound: Redis is unreachable, each process allows 2 fetches per upstream until it is back']);
    } finally {
      await server.restart();
    }
    const b = await semaphore({ maxConcurrent: 2, wait: false });
    await eventually(() => a.run('probe', async () => log.infos.length === 1), 10_000, 'the bound coordinated again');
    upstream.maxInFlight = 0;
    await Promise.all([...Array.from({ length: 4 }, (_, i) => a.run('docker.io', () => get(`/a${i}`))), ...Array.from({ length: 4 }, (_, i) => b.run('docker.io', () => get(`/b${i}`)))]);
    expect(upstream.maxInFlight).toBe(2);
  });
});

if (!redisServerInstalled()) {
  describe('RedisSemaphore: the upstream bound across replicas', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
}
