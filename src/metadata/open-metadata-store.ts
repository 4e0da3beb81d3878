/**
 * Opens the metadata store the config names. `metadata.store`:
 *   "sqlite" (and "file", the value today's configs carry): `<cache.dir>/metadata.db`
 *   "redis": `metadata.redisUrl`, keys under `metadata.redisKeyPrefix`
 *   "memory": nothing persists (tests, one-shot commands)
 * Every error about the config names the key to change. The backends are loaded only when
 * chosen: the Redis client alone adds megabytes to a process that never uses it.
 */
import path from 'node:path';
import { MetadataOptionError, MetadataUnavailableError } from './metadata-errors.js';
import type { MetadataStore } from './metadata-store.js';

export interface MetadataStoreConfig {
  metadata: { store: 'sqlite' | 'file' | 'redis' | 'memory'; redisUrl?: string; redisKeyPrefix?: string; maxVerdicts?: number };
  cache: { dir: string };
}

export const METADATA_DATABASE_FILENAME = 'metadata.db';

const STORES = ['sqlite', 'file', 'redis', 'memory'] as const;

/** Where the SQLite store keeps its file for a cache directory. */
export function metadataDatabasePath(cacheDir: string): string {
  return path.join(cacheDir, METADATA_DATABASE_FILENAME);
}

export interface OpenMetadataOptions {
  /** A Redis unreachable now: fail (the default), or open a store that reconnects (`serve`). */
  whenRedisUnreachable?: 'reject' | 'reconnect';
}

export async function openMetadataStore(config: MetadataStoreConfig, options: OpenMetadataOptions = {}): Promise<MetadataStore> {
  const store = config?.metadata?.store;
  if (!STORES.includes(store)) throw new MetadataOptionError('metadata.store', `one of ${STORES.map((name) => `"${name}"`).join(', ')}`, store);
  switch (store) {
    case 'memory': {
      const { MemoryMetadataStore } = await import('./memory/memory-metadata-store.js');
      return new MemoryMetadataStore();
    }
    case 'redis':
      return openRedis(config.metadata, options.whenRedisUnreachable);
    case 'sqlite':
    case 'file':
      return openSqlite(config.cache?.dir, config.metadata.maxVerdicts);
  }
}

async function openSqlite(cacheDir: unknown, maxVerdicts: number | undefined): Promise<MetadataStore> {
  if (typeof cacheDir !== 'string' || cacheDir === '') throw new MetadataOptionError('cache.dir', 'a directory path', cacheDir);
  const filename = metadataDatabasePath(cacheDir);
  const { SqliteMetadataStore } = await import('./sqlite/sqlite-metadata-store.js');
  try {
    return new SqliteMetadataStore({ filename, maxVerdicts });
  } catch (error) {
    if (error instanceof MetadataOptionError && error.option === 'maxVerdicts') throw error.renamed('metadata.maxVerdicts');
    if (error instanceof MetadataOptionError || (error as { code?: string }).code === 'METADATA_SCHEMA_TOO_NEW') throw error;
    throw new Error(`cannot open the metadata database ${filename} (check cache.dir): ${(error as Error).message}`, { cause: error });
  }
}

async function openRedis(metadata: MetadataStoreConfig['metadata'], whenUnreachable: OpenMetadataOptions['whenRedisUnreachable']): Promise<MetadataStore> {
  if (metadata.redisUrl === undefined) {
    throw new MetadataOptionError('metadata.redisUrl', 'a redis:// or rediss:// URL when metadata.store is "redis"', undefined);
  }
  const { RedisMetadataStore } = await import('./redis/redis-metadata-store.js');
  try {
    return await RedisMetadataStore.open({ url: metadata.redisUrl, keyPrefix: metadata.redisKeyPrefix, whenUnreachable });
  } catch (error) {
    if (error instanceof MetadataOptionError) throw error.renamed(error.option === 'url' ? 'metadata.redisUrl' : 'metadata.redisKeyPrefix');
    if (error instanceof MetadataUnavailableError) throw new MetadataUnavailableError(`${error.message} (check metadata.redisUrl)`, error);
    throw error;
  }
}
