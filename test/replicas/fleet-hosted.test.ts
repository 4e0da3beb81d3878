/**
 * Hosted repositories across replicas (issue 15: "hosted content must work across replicas too"):
 * upload sessions live in Redis and their bytes in the bucket, so a chunked upload opened on one
 * replica is continued on a second and committed on a third; what was pushed through one replica
 * is pulled byte-exact through every other, a fresh one included; a push never reaches the
 * upstream. Real processes, a real Redis, a real S3 (Ceph RGW).
 */
import { describe, expect, it } from 'vitest';
import { get, sha256 } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, seededBytes } from '../helpers/test-images.js';
import { call, header, openUpload, pushImageTo, upstreamWrites, withDigest } from '../hosted/hosted-fixture.js';
import { upstreamRequests } from './fleet-support.js';
import { type Replica, useFleets } from './replica-fleet.js';

const s3 = useS3();
const KiB = 1024;
const MiB = 1024 * KiB;
const LONG = { timeout: 120_000 };
const HOSTED = { repositories: ['team/**'], allowAnonymousPush: true };

/** The same upload URL on another replica (a load balancer may send each request anywhere). */
const on = (replica: Replica, location: string) => {
  const url = new URL(location);
  return `${replica.url}${url.pathname}${url.search}`;
};

describe.skipIf(!s3.available || !redisServerInstalled())('hosted repositories across replicas', () => {
  const fleets = useFleets(s3);

  it('a chunked upload opened on one replica is continued on a second and committed on a third; every replica serves the blob', LONG, async () => {
    const { fake, fleet } = await fleets.open({ overrides: { hosted: HOSTED } });
    const [a, b, c] = await fleet.start(3);
    const bytes = seededBytes(6 * MiB + 123, 'fleet-chunked');
    const location = await openUpload(a!.url, 'team/app');
    const chunks = [[a!, 0, 2 * MiB], [b!, 2 * MiB, 5 * MiB], [a!, 5 * MiB, bytes.length]] as const;
    for (const [replica, from, to] of chunks) {
      const response = await call(on(replica, location), {
        method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${to - 1}` }, body: bytes.subarray(from, to),
      });
      expect([response.status, header(response, 'range')], `chunk ${from}-${to} on replica ${replica.index}`).toEqual([202, `0-${to - 1}`]);
    }
    const status = await call(on(c!, location));
    expect([status.status, header(status, 'range')]).toEqual([204, `0-${bytes.length - 1}`]);
    const committed = await call(withDigest(on(c!, location), sha256(bytes)), { method: 'PUT' });
    expect(committed.status).toBe(201);
    expect(header(committed, 'docker-content-digest')).toBe(sha256(bytes));
    for (const replica of [a!, b!, c!]) {
      const blob = await get(`${replica.url}/v2/team/app/blobs/${sha256(bytes)}`);
      expect(blob.status, `replica ${replica.index}`).toBe(200);
      expect(sha256(blob.body)).toBe(sha256(bytes));
    }
    expect(upstreamWrites(fake)).toBe(0);
  });

  it('an image pushed through one replica is pulled byte-exact through another and a fresh one, by tag, with no upstream request', LONG, async () => {
    const { fake, fleet } = await fleets.open({ overrides: { hosted: HOSTED } });
    const [a, b] = await fleet.start(2);
    const image = makeImage({ layers: [900 * KiB, 40 * KiB], seed: 'fleet-hosted-image' });
    await pushImageTo(a!.url, 'team/app', 'v1', image);
    const [fresh] = await fleet.start(1);
    for (const replica of [b!, fresh!]) {
      const manifest = await get(`${replica.url}/v2/team/app/manifests/v1`, { accept: image.manifest.mediaType });
      expect(manifest.status, `replica ${replica.index}`).toBe(200);
      expect(sha256(manifest.body)).toBe(image.manifest.digest);
      for (const blob of [image.config, ...image.layers]) {
        const answer = await get(`${replica.url}/v2/team/app/blobs/${blob.digest}`);
        expect(answer.status).toBe(200);
        expect(sha256(answer.body)).toBe(blob.digest);
      }
      const tags = await get(`${replica.url}/v2/team/app/tags/list`);
      expect(JSON.parse(tags.body.toString())).toEqual({ name: 'team/app', tags: ['v1'] });
    }
    // Only each replica's start (GET /v2/, learning how the upstream authenticates) reached it.
    expect(upstreamRequests(fake)).toEqual([]);
  });
});
