/**
 * What the Redis store promises beyond the contract: every key under its prefix (mirrors sharing
 * one Redis never see each other), prompt failures while Redis is down or hung, recovery when
 * it is back, and option errors that name the option.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MetadataOptionError, MetadataUnavailableError } from '../../src/metadata/metadata-errors.js';
import { DEFAULT_KEY_PREFIX } from '../../src/metadata/redis/redis-connection.js';
import { RedisKeys } from '../../src/metadata/redis/redis-keys.js';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { digestOf, tagRecord } from '../contract/metadata-fixtures.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

async function elapsed<T>(work: () => Promise<T>): Promise<{ ms: number; result: PromiseSettledResult<T> }> {
  const started = performance.now();
  const [result] = await Promise.allSettled([work()]);
  return { ms: performance.now() - started, result: result! };
}

/** Polls `check` until it resolves, with a deadline. */
async function eventually(check: () => Promise<unknown>, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('Redis metadata store options', () => {
  it('names the option and the value received, and never prints a password', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ url: 'http://127.0.0.1:1' }, 'expected url to be a redis:// or rediss:// URL, got "http://127.0.0.1:1"'],
      [{ url: 'not a url' }, 'expected url to be a redis:// or rediss:// URL, got "not a url"'],
      [{ url: 'http://user:secret@host:1/0' }, 'expected url to be a redis:// or rediss:// URL, got "http://user:***@host:1/0"'],
      [{}, 'expected url to be a redis:// or rediss:// URL, got undefined'],
      [{ url: 'redis://127.0.0.1:1', keyPrefix: 7 }, 'expected keyPrefix to be a string, got 7'],
      [{ url: 'redis://127.0.0.1:1', commandTimeoutMs: 0 }, 'expected commandTimeoutMs to be an integer of at least 1, got 0'],
      [{ url: 'redis://127.0.0.1:1', connectTimeoutMs: -5 }, 'expected connectTimeoutMs to be an integer of at least 1, got -5'],
    ];
    for (const [options, message] of cases) {
      const error = await RedisMetadataStore.open(options as never).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MetadataOptionError);
      expect((error as Error).message).toBe(message);
    }
  });
});

describe.skipIf(!redisServerInstalled())('Redis metadata store against a real redis-server', () => {
  let server: RedisServer;
  let admin: Redis;
  const stores: RedisMetadataStore[] = [];
  const open = async (keyPrefix: string, options: { commandTimeoutMs?: number } = {}) => {
    const store = await RedisMetadataStore.open({ url: server.url, keyPrefix, ...options });
    stores.push(store);
    return store;
  };
  beforeAll(async () => {
    server = await startRedisServer();
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    // It reconnects while the server is stopped on purpose; those errors are expected.
    admin.on('error', () => {});
  });
  afterEach(async () => {
    server.resume();
    for (const store of stores.splice(0)) await store.close();
  });
  afterAll(async () => {
    admin.disconnect();
    await server?.stop();
  });

  it('writes every key under its prefix; a second mirror on another prefix sees nothing of it', async () => {
    const first = await open('mirror-a:');
    const second = await open('mirror-b:');
    await first.tags.set('docker.io/library/alpine', 'latest', tagRecord(1));
    await first.links.add('docker.io/library/alpine', digestOf(1));
    await first.manifests.put({ digest: digestOf(2), mediaType: 'm', size: 1, references: [], subject: digestOf(1) });
    await first.blobs.put(digestOf(3), 10, { retained: true });
    await first.uploads.put({ id: 'u', repository: 'team/app', writerId: 'w', offset: 0, startedAt: 1, updatedAt: 2 });
    await first.verdicts.set('docker.io/acme/x', { readable: false, checkedAt: 1 }, 60_000);
    await first.usage.add(new Map([['docker.io/library/alpine', { pulls: 1, hits: 0, misses: 1 }]]));
    const keys = await admin.keys('*');
    expect(keys.filter((key) => key.startsWith('mirror-a:')).length).toBeGreaterThanOrEqual(10);
    expect(keys.filter((key) => !key.startsWith('mirror-a:') && !key.startsWith('mirror-b:'))).toEqual([]);
    expect(await second.tags.get('docker.io/library/alpine', 'latest')).toBeUndefined();
    expect(await second.catalog.list()).toEqual([]);
    expect(await second.blobs.totals()).toEqual({ count: 0, bytes: 0, retainedBytes: 0 });
    expect((await second.usage.report(5)).totals).toEqual({ pulls: 0, hits: 0, misses: 0 });
    expect(second.keyPrefix).toBe('mirror-b:');
  });

  it('open rejects promptly, naming the server, when nothing listens there', async () => {
    const spare = await startRedisServer();
    await spare.stop();
    const { ms, result } = await elapsed(() => RedisMetadataStore.open({ url: `redis://:hunter2@127.0.0.1:${spare.port}` }));
    expect(result.status).toBe('rejected');
    const error = (result as PromiseRejectedResult).reason as MetadataUnavailableError;
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toContain(`Redis at 127.0.0.1:${spare.port} is unavailable`);
    expect(error.message).not.toContain('hunter2');
    expect(ms).toBeLessThan(2_500);
  });

  it('whenUnreachable "reconnect": open returns while nothing listens, calls are UNAVAILABLE, and the store works once Redis is there', async () => {
    const spare = await startRedisServer();
    await spare.stop();
    const store = await RedisMetadataStore.open({ url: spare.url, whenUnreachable: 'reconnect' });
    try {
      await expect(store.tags.get('r', 'v1')).rejects.toBeInstanceOf(MetadataUnavailableError);
      await spare.restart();
      await eventually(() => store.ping(), 10_000);
      await store.tags.set('r', 'v1', tagRecord(1));
      expect(await store.tags.get('r', 'v1')).toStrictEqual(tagRecord(1));
      // What open would have written had Redis been there: when usage counting started.
      const direct = new Redis(spare.url, { maxRetriesPerRequest: 1 });
      try {
        await eventually(async () => expect(Number(await direct.hget(new RedisKeys(DEFAULT_KEY_PREFIX).counters, 'usageSince'))).toBeGreaterThan(0), 5_000);
      } finally {
        direct.disconnect();
      }
    } finally {
      await store.close();
      await spare.stop();
    }
  });

  it('whenUnreachable "reconnect" still rejects a Redis that answers with an error (a wrong password)', async () => {
    const guarded = await startRedisServer();
    try {
      const direct = new Redis(guarded.url, { maxRetriesPerRequest: 1 });
      await direct.config('SET', 'requirepass', 'right');
      direct.disconnect();
      const { result } = await elapsed(() => RedisMetadataStore.open({ url: `redis://:wrong@127.0.0.1:${guarded.port}`, whenUnreachable: 'reconnect' }));
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(MetadataUnavailableError);
      expect(String((result as PromiseRejectedResult).reason.message)).toMatch(/WRONGPASS|invalid password/);
    } finally {
      await guarded.stop();
    }
  });

  it('while Redis is down every call rejects at once with UNAVAILABLE; when it is back the same store works again', async () => {
    const store = await open('down:');
    await store.tags.set('r', 'v1', tagRecord(1));
    await server.stop();
    try {
      const calls: Array<() => Promise<unknown>> = [() => store.ping(), () => store.tags.get('r', 'v1'), () => store.usage.add(new Map([['r', { pulls: 1, hits: 0, misses: 0 }]]))];
      for (const call of calls) {
        const { ms, result } = await elapsed(call);
        expect(result.status).toBe('rejected');
        expect((result as PromiseRejectedResult).reason).toBeInstanceOf(MetadataUnavailableError);
        expect(ms).toBeLessThan(500);
      }
    } finally {
      await server.restart();
    }
    // The client reconnects in the background (backoff capped at 2 s); the restarted server is empty.
    await eventually(() => store.ping(), 10_000);
    expect(await store.tags.get('r', 'v1')).toBeUndefined();
    await store.tags.set('r', 'v2', tagRecord(2));
    expect(await store.tags.get('r', 'v2')).toStrictEqual(tagRecord(2));
  });

  it('a hung Redis (connected, never answering) fails a call after commandTimeoutMs, not never', async () => {
    const store = await open('hung:', { commandTimeoutMs: 300 });
    await store.ping();
    server.pause();
    const { ms, result } = await elapsed(() => store.tags.get('r', 'v1'));
    server.resume();
    expect(result.status).toBe('rejected');
    expect((result as PromiseRejectedResult).reason).toBeInstanceOf(MetadataUnavailableError);
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(5_000);
    await eventually(() => store.ping(), 10_000);
  });
});

if (!redisServerInstalled()) {
  describe('Redis metadata store against a real redis-server', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
}
