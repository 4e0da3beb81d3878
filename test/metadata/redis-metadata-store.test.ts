/**
 * The MetadataStore contract against Redis: one real redis-server for the file, and a fresh key
 * prefix per test, so tests never see each other's keys (as two mirrors sharing one Redis).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

if (!redisServerInstalled()) {
  describe('MetadataStore contract: redis', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
} else {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server?.stop());

  describeMetadataStoreContract('redis', async () => {
    const keyPrefix = `contract-${randomUUID()}:`;
    return {
      open: () => RedisMetadataStore.open({ url: server.url, keyPrefix }),
      async destroy() {
        const admin = new Redis(server.url);
        const keys = await admin.keys(`${keyPrefix}*`);
        if (keys.length > 0) await admin.del(...keys);
        await admin.quit();
      },
    };
  });
}
