/**
 * The keyv instance behind the tag index: a file under the cache directory by default (no
 * server to run, survives restarts), Redis when several replicas share one cache, or memory.
 */
import path from 'node:path';
import Keyv from 'keyv';
import type { MirrorConfig } from '../config/mirror-config.js';
import { JsonFileStore } from './json-file-store.js';

export interface CreateKeyvOptions<Value> {
  /** File store only: never write (commands that read a cache a running server owns). */
  readOnly?: boolean;
  /**
   * File store only: combines this process's version of a key with another process's when both
   * changed it (e.g. a union of lists); without it the newer version wins.
   */
  merge?: (mine: Value, theirs: Value) => Value;
}

export async function createKeyv<Value>(config: Pick<MirrorConfig, 'metadata' | 'cache'>, namespace: string, options: CreateKeyvOptions<Value> = {}): Promise<Keyv<Value>> {
  switch (config.metadata.store) {
    case 'memory':
      return new Keyv<Value>({ namespace });
    case 'redis': {
      // Loaded only when used: the Redis client adds about 17 MB to every process that imports it.
      const { default: KeyvRedis } = await import('@keyv/redis');
      return new Keyv<Value>({ store: new KeyvRedis(config.metadata.redisUrl), namespace });
    }
    case 'sqlite':
      // Until the SQLite store lands (issue 13), the JSON file store stands in for it.
      // keyv-file writes its file in place and loses everything if killed mid-write; see json-file-store.ts.
      return new Keyv<Value>({
        store: new JsonFileStore(path.join(config.cache.dir, 'metadata', `${namespace}.json`), {
          readOnly: options.readOnly,
          merge: options.merge && mergeSerialized(options.merge),
        }),
        namespace,
      });
  }
}

interface Serialized<Value> {
  value: Value;
  expires?: number;
}

/**
 * Lifts a merge of values to the strings keyv hands its store: JSON of `{value, expires}`.
 * keyv's serializer only escapes strings that start with ':' and Buffers; the merge compares
 * and returns such strings as they are, so the escaping survives the round trip.
 */
function mergeSerialized<Value>(merge: (mine: Value, theirs: Value) => Value): (mine: unknown, theirs: unknown) => unknown {
  return function mergeKeyvValues(mine, theirs) {
    if (typeof mine !== 'string' || typeof theirs !== 'string') return mine;
    const [a, b] = [JSON.parse(mine) as Serialized<Value>, JSON.parse(theirs) as Serialized<Value>];
    const expires = a.expires === undefined || b.expires === undefined ? undefined : Math.max(a.expires, b.expires);
    return JSON.stringify({ value: merge(a.value, b.value), expires });
  };
}
