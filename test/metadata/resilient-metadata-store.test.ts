/**
 * The MetadataStore contract against the store replicas use (replicas/resilient-metadata.ts: the
 * Redis store behind the fallbacks for a Redis outage): with Redis up it must behave exactly like
 * the store it wraps. What it does with Redis down is in test/replicas/fleet-outages.test.ts and
 * below.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { ResilientMetadataStore } from '../../src/replicas/resilient-metadata.js';
import { describeMetadataStoreContract } from '../contract/metadata-store.contract.js';
import { RecordingLog } from '../coordination/coordination-fixture.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

if (!redisServerInstalled()) {
  describe('MetadataStore contract: resilient redis', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
} else {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(() => server?.stop());

  describeMetadataStoreContract('resilient redis', async () => {
    const keyPrefix = `contract-${randomUUID()}:`;
    return {
      open: async () => new ResilientMetadataStore(await RedisMetadataStore.open({ url: server.url, keyPrefix })),
      async destroy() {
        const admin = new Redis(server.url);
        const keys = await admin.keys(`${keyPrefix}*`);
        if (keys.length > 0) await admin.del(...keys);
        await admin.quit();
      },
    };
  });

  describe('resilient metadata store with Redis down', () => {
    it('serves recent tags and manifest records from memory, drops index writes, logs the outage and the recovery once', async () => {
      const log = new RecordingLog();
      const store = new ResilientMetadataStore(await RedisMetadataStore.open({ url: server.url, keyPrefix: `down-${randomUUID()}:` }), log);
      const record = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, checkedAt: 1 };
      const manifest = { digest: record.digest, mediaType: record.mediaType, size: 10, references: [] };
      try {
        await store.tags.set('docker.io/library/a', 'latest', record);
        await store.manifests.put(manifest);
        await server.stop();
        expect(await store.tags.get('docker.io/library/a', 'latest')).toEqual(record);
        expect(await store.tags.get('docker.io/library/a', 'other')).toBeUndefined();
        expect(await store.manifests.get(record.digest)).toEqual(manifest);
        expect(await store.blobs.get(record.digest)).toBeUndefined();
        await store.blobs.put(record.digest, 10);
        await store.links.add('docker.io/library/a', record.digest);
        await store.tags.set('docker.io/library/a', 'new', { ...record, checkedAt: 2 });
        expect(await store.tags.get('docker.io/library/a', 'new')).toMatchObject({ checkedAt: 2 });
        await expect(store.uploads.get('x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
        expect(store.degraded).toBe(true);
        expect(log.warnings).toHaveLength(1);
        await server.restart();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        for (let attempt = 0; attempt < 40 && store.degraded; attempt++) {
          await store.tags.get('docker.io/library/a', 'latest');
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
        expect(store.degraded).toBe(false);
        expect(log.infos).toHaveLength(1);
      } finally {
        await store.close();
      }
    });
  });
}
