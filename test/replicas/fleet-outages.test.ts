/**
 * Issue 15 item 5: the shared backends going away.
 *   Redis down: a replica keeps serving what its disk and S3 hold, tags from what it saw
 *   recently, with no upstream request; another replica serves blobs from S3; /readyz stays 200
 *   but says degraded (metadataStore false) and the log says so once; when Redis is back, /readyz
 *   says so and the fleet coordinates again (one upstream GET for a herd on two replicas).
 *   Redis down at start: a replica started (or restarted) during the outage comes up degraded
 *   instead of exiting, and uses Redis once it is back.
 *   S3 down: blobs on a replica's disk are still served; cold ones and ones only the bucket holds
 *   are 503; /readyz says objectStore false. S3 goes down through a second gateway on the same
 *   Ceph cluster, so no other suite loses S3.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pullImage } from '../cache/cache-fixture.js';
import { S3_ENV, startExtraGateway } from '../helpers/ceph-s3.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { deliveredExactly, timedGet, upstreamBlobGets, upstreamRequests } from './fleet-support.js';
import { type Replica, useFleets } from './replica-fleet.js';

const s3 = useS3();
const KiB = 1024;
const REPO = 'library/outage';
const LONG = { timeout: 180_000 };

async function readiness(replica: Replica): Promise<{ status: number; report: { ready: boolean; degraded: boolean; checks: Record<string, boolean> } }> {
  const response = await get(`${replica.url}/readyz`);
  return { status: response.status, report: JSON.parse(response.body.toString()) };
}

describe.skipIf(!s3.available || !redisServerInstalled())('replicas while Redis or S3 is down', () => {
  const fleets = useFleets(s3);
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('Redis down: served from disk, S3 and recent tags with no upstream request; /readyz degraded; coordination again once Redis is back', LONG, async () => {
    const { fake, fleet } = await fleets.open();
    const image = makeImage({ layers: [600 * KiB, 200 * KiB], seed: 'fleet-redis-down' });
    pushImage(fake, REPO, 'v1', image);
    const [a, b] = await fleet.start(2);
    await pullImage(a!.url, REPO, 'v1', image);
    fake.resetCounts();

    await fleets.redis().stop();
    try {
      await pullImage(a!.url, REPO, 'v1', image);
      const fromBucket = await get(`${b!.url}/v2/${REPO}/blobs/${image.layers[0]!.digest}`);
      expect(fromBucket.status).toBe(200);
      expect(sha256(fromBucket.body)).toBe(image.layers[0]!.digest);
      expect(upstreamRequests(fake)).toEqual([]);
      const down = await readiness(a!);
      expect(down.status).toBe(200);
      expect(down.report).toMatchObject({ ready: true, degraded: true, checks: { metadataStore: false, objectStore: true } });
      expect(a!.log()).toMatch(/Redis is unreachable/);
    } finally {
      await fleets.redis().restart();
    }
    await waitFor(async () => (await readiness(a!)).report.checks.metadataStore === true, 20_000, 'a to see Redis again');
    expect((await readiness(a!)).report.degraded).toBe(false);
    expect(a!.log()).toMatch(/metadataStore is reachable again/);

    const cold = makeImage({ layers: [2 * 1024 * KiB], seed: 'fleet-after-redis' }).layers[0]!;
    fake.addBlob(cold.bytes);
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 1024 * KiB });
    await waitFor(async () => (await get(`${b!.url}/readyz`)).body.includes('"metadataStore":true'), 20_000, 'b to see Redis again');
    // Coordination resumes within a second of Redis being reachable (one probe a second).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const herd = await Promise.all([a, a, b, b].map((replica) => timedGet(`${replica!.url}/v2/${REPO}/blobs/${cold.digest}`)));
    for (const response of herd) expect(deliveredExactly(response, cold.bytes)).toBe(true);
    expect(upstreamBlobGets(fake, cold.digest)).toHaveLength(1);
  });

  it('Redis down at start: a replica starts degraded, serves what the bucket holds, and reads the tags other replicas write once Redis is back', LONG, async () => {
    const { fake, fleet } = await fleets.open();
    const image = makeImage({ layers: [300 * KiB], seed: 'fleet-redis-down-at-start' });
    pushImage(fake, REPO, 'v3', image);
    const [a] = await fleet.start(1);
    await pullImage(a!.url, REPO, 'v3', image);
    fake.resetCounts();

    await fleets.redis().stop();
    let late: Replica | undefined;
    try {
      [late] = await fleet.start(1);
      const fromBucket = await get(`${late!.url}/v2/${REPO}/blobs/${image.layers[0]!.digest}`);
      expect(fromBucket.status).toBe(200);
      expect(sha256(fromBucket.body)).toBe(image.layers[0]!.digest);
      const down = await readiness(late!);
      expect(down.status).toBe(200);
      expect(down.report).toMatchObject({ ready: true, degraded: true, checks: { metadataStore: false } });
      expect(late!.log()).toMatch(/metadata store: Redis is unreachable/);
    } finally {
      await fleets.redis().restart();
    }
    await waitFor(async () => (await readiness(late!)).report.checks.metadataStore === true, 20_000, 'the late replica to see Redis');
    // This Redis keeps nothing across a restart: the late replica asks the upstream for the tag
    // again (its blobs come from the bucket), and writes it to Redis, where a new replica reads it.
    await pullImage(late!.url, REPO, 'v3', image);
    expect(upstreamRequests(fake).map((request) => `${request.method} ${request.path}`)).toEqual([`GET /v2/${REPO}/manifests/v3`]);
    fake.resetCounts();
    const [next] = await fleet.start(1);
    await pullImage(next!.url, REPO, 'v3', image);
    expect(upstreamRequests(fake)).toEqual([]);
    expect(late!.child.exitCode).toBeNull();
  });

  it('S3 down: blobs on the disk are served; cold blobs and blobs only the bucket holds are 503; /readyz degraded', LONG, async (context) => {
    const cephConf = s3.cephConf();
    if (!cephConf) return context.skip(`no ceph.conf to start a second gateway: set ${S3_ENV.cephConf}`);
    const gateway = await startExtraGateway(cephConf, path.join(path.dirname(cephConf), 'log'));
    cleanups.push(() => gateway.stop());
    const { fake, fleet } = await fleets.open({ s3: { ...s3.target(), endpoint: gateway.endpoint } });
    const image = makeImage({ layers: [500 * KiB], seed: 'fleet-s3-down' });
    pushImage(fake, REPO, 'v2', image);
    const cold = makeImage({ layers: [300 * KiB], seed: 'fleet-s3-down-cold' }).layers[0]!;
    fake.addBlob(cold.bytes);
    const [a, b] = await fleet.start(2);
    await pullImage(a!.url, REPO, 'v2', image);
    const layer = image.layers[0]!;

    await gateway.stop();
    const fromDisk = await get(`${a!.url}/v2/${REPO}/blobs/${layer.digest}`);
    expect(fromDisk.status).toBe(200);
    expect(sha256(fromDisk.body)).toBe(layer.digest);
    for (const [replica, digest] of [[a!, cold.digest], [b!, layer.digest]] as const) {
      const refused = await get(`${replica.url}/v2/${REPO}/blobs/${digest}`, {}, { headersTimeoutMs: 30_000 });
      expect(refused.status, `${digest} on replica ${replica.index}`).toBe(503);
      expect(JSON.parse(refused.body.toString()).errors[0].code).toBe('UNAVAILABLE');
    }
    const down = await readiness(a!);
    expect(down.status).toBe(200);
    expect(down.report).toMatchObject({ ready: true, degraded: true, checks: { metadataStore: true, objectStore: false } });
  });
});
