/**
 * The intended use of RedisFlights for manifests and tags (issue 15 item 4: "one upstream HEAD
 * per tag per TTL across the fleet"): nothing beyond the flight is needed when the work first
 * looks at the shared record. Two replicas, each with its own Redis metadata store and flights
 * (their own connections), revalidate one tag against a real HTTP upstream that counts HEADs.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TagRecord } from '../../src/metadata/metadata-store.js';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { Replicas, sleep, type Replica } from './coordination-fixture.js';

const REPOSITORY = 'docker.io/library/alpine';
const TTL_MS = 1_000;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const MEDIA_TYPE = 'application/vnd.oci.image.index.v1+json';

/** Answers HEAD /v2/library/alpine/manifests/latest after 150 ms, counting each one. */
function countingRegistry(): { server: Server; heads: () => number } {
  let heads = 0;
  const server = createServer((request, response) => {
    if (request.method !== 'HEAD' || request.url !== '/v2/library/alpine/manifests/latest') {
      response.writeHead(404).end();
      return;
    }
    heads += 1;
    setTimeout(() => response.writeHead(200, { 'Docker-Content-Digest': DIGEST, 'Content-Type': MEDIA_TYPE, 'Content-Length': '1234' }).end(), 150);
  });
  return { server, heads: () => heads };
}

/** What a manifest resolver does for a tag, through the flight: the shared record first, then one HEAD. */
function revalidate(replica: Replica, store: RedisMetadataStore, upstreamUrl: string): Promise<string> {
  return replica.flights.run(`tag ${REPOSITORY}:latest`, async () => {
    const record = await store.tags.get(REPOSITORY, 'latest');
    if (record && Date.now() - record.checkedAt < TTL_MS) return record.digest;
    const response = await fetch(`${upstreamUrl}/v2/library/alpine/manifests/latest`, { method: 'HEAD' });
    const fresh: TagRecord = { digest: response.headers.get('docker-content-digest')!, mediaType: MEDIA_TYPE, size: 1234, checkedAt: Date.now() };
    await store.tags.set(REPOSITORY, 'latest', fresh);
    return fresh.digest;
  }, { deadlineMs: 10_000 });
}

describe.skipIf(!redisServerInstalled())('tag revalidation across the fleet', () => {
  let server: RedisServer;
  const replicas = new Replicas();
  const stores: RedisMetadataStore[] = [];
  let registry: ReturnType<typeof countingRegistry>;

  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterEach(async () => {
    await replicas.closeAll();
    await Promise.all(stores.splice(0).map((store) => store.close()));
    registry?.server.close();
  });
  afterAll(() => server?.stop());

  it('two replicas, ten callers each, again and again: one upstream HEAD per tag per TTL', async () => {
    registry = countingRegistry();
    await new Promise<void>((resolve) => registry.server.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(registry.server.address() as AddressInfo).port}`;
    const keyPrefix = `tags-${randomUUID()}:`;
    const fleet = await Promise.all([0, 1].map(async () => {
      const store = await RedisMetadataStore.open({ url: server.url, keyPrefix });
      stores.push(store);
      return { replica: await replicas.open({ url: server.url, keyPrefix }), store };
    }));
    const round = () => Promise.all(fleet.flatMap(({ replica, store }) => Array.from({ length: 10 }, () => revalidate(replica, store, upstreamUrl))));

    expect(await round()).toEqual(Array(20).fill(DIGEST));
    expect(registry.heads()).toBe(1);
    expect(await round()).toEqual(Array(20).fill(DIGEST));
    expect(registry.heads()).toBe(1);
    await sleep(TTL_MS + 100);
    expect(await round()).toEqual(Array(20).fill(DIGEST));
    expect(registry.heads()).toBe(2);
    expect((await fleet[1]!.store.tags.get(REPOSITORY, 'latest'))?.digest).toBe(DIGEST);
  });
});

if (!redisServerInstalled()) {
  describe('tag revalidation across the fleet', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
}
