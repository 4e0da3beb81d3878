/** The factory: which store each `metadata.store` value opens, and errors that name the config key. */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import { MetadataOptionError, MetadataUnavailableError } from '../../src/metadata/metadata-errors.js';
import { openMetadataStore, type MetadataStoreConfig } from '../../src/metadata/open-metadata-store.js';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { tagRecord } from '../contract/metadata-fixtures.js';
import { redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'open-metadata-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const config = (metadata: Record<string, unknown>, cacheDir: unknown = dir) => ({ metadata, cache: { dir: cacheDir } }) as unknown as MetadataStoreConfig;

async function openError(value: MetadataStoreConfig): Promise<Error> {
  const error = await openMetadataStore(value).then(async (store) => {
    await store.close();
    throw new Error('expected openMetadataStore to reject');
  }, (caught: Error) => caught);
  return error;
}

describe('openMetadataStore', () => {
  it.each(['file', 'sqlite'])('"%s" opens SQLite at <cache.dir>/metadata.db, which outlives the store', async (store) => {
    const first = await openMetadataStore(config({ store }));
    expect(first).toBeInstanceOf(SqliteMetadataStore);
    await first.tags.set('team/app', 'v1', tagRecord(1));
    await first.close();
    expect(existsSync(path.join(dir, 'metadata.db'))).toBe(true);
    const second = await openMetadataStore(config({ store: 'sqlite' }));
    expect(await second.tags.get('team/app', 'v1')).toStrictEqual(tagRecord(1));
    await second.close();
  });

  it('"memory" opens a store that keeps nothing on disk', async () => {
    const store = await openMetadataStore(config({ store: 'memory' }));
    expect(store).toBeInstanceOf(MemoryMetadataStore);
    await store.close();
    expect(existsSync(path.join(dir, 'metadata.db'))).toBe(false);
  });

  it('names the config key to change', async () => {
    const cases: Array<[MetadataStoreConfig, string]> = [
      [config({ store: 'postgres' }), 'expected metadata.store to be one of "sqlite", "file", "redis", "memory", got "postgres"'],
      [config({}), 'expected metadata.store to be one of "sqlite", "file", "redis", "memory", got undefined'],
      [config({ store: 'redis' }), 'expected metadata.redisUrl to be a redis:// or rediss:// URL when metadata.store is "redis", got undefined'],
      [config({ store: 'redis', redisUrl: 'localhost:6379' }), 'expected metadata.redisUrl to be a redis:// or rediss:// URL, got "localhost:6379"'],
      [config({ store: 'redis', redisUrl: 'redis://127.0.0.1:1', redisKeyPrefix: 5 }), 'expected metadata.redisKeyPrefix to be a string, got 5'],
      [config({ store: 'sqlite' }, ''), 'expected cache.dir to be a directory path, got ""'],
    ];
    for (const [value, message] of cases) {
      const error = await openError(value);
      expect(error).toBeInstanceOf(MetadataOptionError);
      expect(error.message).toBe(message);
    }
  });

  it('a cache.dir that cannot hold the database says so, naming cache.dir', async () => {
    const notADirectory = path.join(dir, 'file');
    await writeFile(notADirectory, 'x');
    const error = await openError(config({ store: 'sqlite' }, notADirectory));
    expect(error.message).toMatch(/^cannot open the metadata database .*file\/metadata\.db \(check cache\.dir\): /);
  });

  it('a Redis nobody answers at is UNAVAILABLE, naming metadata.redisUrl', async () => {
    const error = await openError(config({ store: 'redis', redisUrl: 'redis://127.0.0.1:9/0' }));
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    expect(error.message).toMatch(/Redis at 127\.0\.0\.1:9\/0 is unavailable: .* \(check metadata\.redisUrl\)$/);
  });
});

describe.skipIf(!redisServerInstalled())('openMetadataStore with Redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server?.stop());

  it('"redis" opens the Redis store under metadata.redisKeyPrefix, "registry-mirror:" by default', async () => {
    const named = await openMetadataStore(config({ store: 'redis', redisUrl: server.url, redisKeyPrefix: 'edge-1:' }));
    const plain = await openMetadataStore(config({ store: 'redis', redisUrl: server.url }));
    expect(named).toBeInstanceOf(RedisMetadataStore);
    expect((named as RedisMetadataStore).keyPrefix).toBe('edge-1:');
    expect((plain as RedisMetadataStore).keyPrefix).toBe('registry-mirror:');
    await named.tags.set('team/app', 'v1', tagRecord(1));
    expect(await plain.tags.get('team/app', 'v1')).toBeUndefined();
    await Promise.all([named.close(), plain.close()]);
  });
});
