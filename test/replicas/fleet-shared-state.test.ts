/**
 * What replicas share (issue 15, done-when 2 and 4, item 4 for tags, and the internal endpoint's
 * guard): a tag pulled through one replica is served by another within its TTL with no upstream
 * request; a fresh replica with an empty disk serves a previously pulled image with no upstream
 * request; past the TTL, the whole fleet revalidates a tag with one upstream HEAD; the internal
 * endpoint refuses anything but a valid fleet signature, and is not even routed without a secret.
 * Real processes, a real Redis, a real S3 (Ceph RGW).
 */
import { describe, expect, it } from 'vitest';
import { signClusterRequest } from '../../src/replicas/cluster-auth.js';
import { pullImage } from '../cache/cache-fixture.js';
import { get, sha256 } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { upstreamRequests } from './fleet-support.js';
import { useFleets } from './replica-fleet.js';

const s3 = useS3();
const KiB = 1024;
const REPO = 'library/shared';
const LONG = { timeout: 120_000 };

describe.skipIf(!s3.available || !redisServerInstalled())('what replicas share', () => {
  const fleets = useFleets(s3);

  async function startFleet(count: number, ttlSeconds = 300) {
    const { fake, fleet } = await fleets.open({ ttlSeconds });
    return { fake, fleet, replicas: await fleet.start(count) };
  }

  it('a tag pulled through one replica is served by another within its TTL; a fresh replica with an empty disk serves the image; no upstream request', LONG, async () => {
    const { fake, fleet, replicas: [a, b] } = await startFleet(2);
    const image = makeImage({ layers: [700 * KiB, 300 * KiB], seed: 'fleet-shared' });
    pushImage(fake, REPO, 'v1', image);
    await pullImage(a!.url, REPO, 'v1', image);
    fake.resetCounts();

    const byTag = await get(`${b!.url}/v2/${REPO}/manifests/v1`, { accept: image.manifest.mediaType });
    expect(byTag.status).toBe(200);
    expect(sha256(byTag.body)).toBe(image.manifest.digest);
    expect(upstreamRequests(fake)).toEqual([]);

    const [fresh] = await fleet.start(1);
    await pullImage(fresh!.url, REPO, 'v1', image);
    // Pulled again: by now from its own disk, still without the upstream.
    await pullImage(fresh!.url, REPO, 'v1', image);
    expect(upstreamRequests(fake)).toEqual([]);
  });

  it('past the TTL, 15 clients on three replicas revalidate a tag with one upstream HEAD in all', LONG, async () => {
    const { fake, replicas } = await startFleet(3, 1);
    const image = makeImage({ layers: [100 * KiB], seed: 'fleet-revalidate' });
    pushImage(fake, REPO, 'v2', image);
    expect((await get(`${replicas[0]!.url}/v2/${REPO}/manifests/v2`, { accept: image.manifest.mediaType })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    // A slow HEAD: every replica asks while the first revalidation is still under way.
    fake.setFault('manifest', { delayMs: 1_000 });
    fake.resetCounts();
    const answers = await Promise.all(replicas.flatMap((replica) => Array.from({ length: 5 }, () => get(`${replica.url}/v2/${REPO}/manifests/v2`, { accept: image.manifest.mediaType }))));
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(sha256(answer.body)).toBe(image.manifest.digest);
    }
    expect(fake.count({ method: 'HEAD', pathIncludes: '/manifests/' })).toBe(1);
    expect(fake.count({ method: 'GET', pathIncludes: '/manifests/' })).toBe(0);
  });

  it('the internal endpoint: 401 without a valid fleet signature, 404 with one for a blob not downloading, not routed without a secret', LONG, async () => {
    const { fleet, replicas: [a] } = await startFleet(1);
    const path = `/_mirror/fleet/blobs/sha256:${'c'.repeat(64)}`;
    const refused = [
      await get(`${a!.url}${path}`),
      await get(`${a!.url}${path}`, { 'x-mirror-cluster-auth': signClusterRequest('not the fleet secret at all', 'GET', path) }),
      await get(`${a!.url}${path}`, { 'x-mirror-cluster-auth': signClusterRequest(fleet.secret, 'GET', `/_mirror/fleet/blobs/sha256:${'d'.repeat(64)}`) }),
      await get(`${a!.url}${path}`, { 'x-mirror-cluster-auth': signClusterRequest(fleet.secret, 'GET', path, Date.now() - 120_000) }),
    ];
    for (const response of refused) {
      expect(response.status).toBe(401);
      expect(JSON.parse(response.body.toString()).errors[0].code).toBe('UNAUTHORIZED');
    }
    const signed = await get(`${a!.url}${path}`, { 'x-mirror-cluster-auth': signClusterRequest(fleet.secret, 'GET', path) });
    expect(signed.status).toBe(404);
    expect(JSON.parse(signed.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');

    const [unsecured] = await fleet.start(1, { MIRROR_CLUSTER_SECRET: '' });
    const unrouted = await get(`${unsecured!.url}${path}`, { 'x-mirror-cluster-auth': signClusterRequest(fleet.secret, 'GET', path) });
    expect(unrouted.status).toBe(404);
    expect(JSON.parse(unrouted.body.toString()).errors[0].code).toBe('NOT_FOUND');
  });
});
