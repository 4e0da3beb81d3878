/**
 * The keyv instance behind the tag index: a file under the cache directory by default (no
 * server to run, survives restarts), Redis when several replicas share one cache, or memory.
 */
import path from 'node:path';
import Keyv from 'keyv';
import { KeyvFile } from 'keyv-file';
import KeyvRedis from '@keyv/redis';
import type { MirrorConfig } from '../config/mirror-config.js';

export function createKeyv<Value>(config: Pick<MirrorConfig, 'metadata' | 'cache'>, namespace: string): Keyv<Value> {
  switch (config.metadata.store) {
    case 'memory':
      return new Keyv<Value>({ namespace });
    case 'redis':
      return new Keyv<Value>({ store: new KeyvRedis(config.metadata.redisUrl), namespace });
    case 'file':
      return new Keyv<Value>({
        store: new KeyvFile({ filename: path.join(config.cache.dir, 'metadata', `${namespace}.json`), writeDelay: 100 }),
        namespace,
      });
  }
}
