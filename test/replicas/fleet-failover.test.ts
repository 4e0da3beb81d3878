/**
 * Issue 15, done-when 3 and item 5: the replica that owns a download is killed with SIGKILL
 * mid-download. Its clients are cut; the clients streaming it on other replicas are cut too or
 * complete, but no client anywhere gets a clean end of short or wrong bytes; the lease expires
 * within seconds and a retry on another replica downloads the blob again and succeeds; no partial
 * object is ever visible in the bucket as a blob. Real processes, Redis, S3 (Ceph RGW).
 */
import { describe, expect, it } from 'vitest';
import { get, waitFor } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { S3Fixture } from '../storage/s3-fixture.js';
import { deliveredExactly, leaseOwner, timedGet, upstreamBlobGets, type TimedResponse } from './fleet-support.js';
import { type Replica, useFleets } from './replica-fleet.js';

const s3 = useS3();
const MiB = 2 ** 20;
const REPO = 'library/failover';

/** Bytes this replica has taken in for running downloads (its /api/status). */
async function bytesDownloading(replica: Replica): Promise<number> {
  const status = JSON.parse((await get(`${replica.url}/api/status`)).body.toString()) as { downloads: { inFlight: Array<{ bytesWritten: number }> } };
  return status.downloads.inFlight.reduce((sum, download) => sum + download.bytesWritten, 0);
}

/** Never a clean end of wrong or short bytes: complete and right, or cut with what came a prefix of the blob. */
function neverCleanlyWrong(response: TimedResponse, bytes: Buffer): void {
  if (response.error === undefined && response.status === 200) expect(response.body.equals(bytes)).toBe(true);
  else expect(bytes.subarray(0, response.body.length).equals(response.body)).toBe(true);
}

describe.skipIf(!s3.available || !redisServerInstalled())('the owning replica killed mid-download', () => {
  const fleets = useFleets(s3);

  it('its clients are cut, no client gets a clean short body, the lease expires and a retry elsewhere succeeds', { timeout: 180_000 }, async () => {
    const { fake, fleet } = await fleets.open();
    const image = makeImage({ layers: [8 * MiB], seed: 'fleet-failover' });
    pushImage(fake, REPO, 'latest', image);
    const layer = image.layers[0]!;
    const [owner, b, c] = await fleet.start(3);
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: MiB });
    const url = (replica: Replica) => `${replica.url}/v2/${REPO}/blobs/${layer.digest}`;

    const ownerClient = timedGet(url(owner!));
    expect(await leaseOwner(fleets.redis().url, `blob ${layer.digest}`)).toBe(owner!.url);
    const elsewhere = [timedGet(url(b!)), timedGet(url(b!)), timedGet(url(c!))];
    await waitFor(async () => (await bytesDownloading(b!)) > 0 && (await bytesDownloading(c!)) > 0, 30_000, 'b and c streaming from the owner');
    await owner!.kill();
    const killedAt = Date.now();

    const cut = await ownerClient;
    expect(cut.error ?? cut.status === 0).toBeTruthy();
    expect(cut.body.length).toBeLessThan(layer.size);
    neverCleanlyWrong(cut, layer.bytes);
    for (const response of await Promise.all(elsewhere)) neverCleanlyWrong(response, layer.bytes);

    fake.setFault('blob', null);
    const retry = await timedGet(url(b!));
    expect(deliveredExactly(retry, layer.bytes)).toBe(true);
    // The lease (5 s) had to expire first; then one download, at full speed.
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(2);
    expect(deliveredExactly(await timedGet(url(c!)), layer.bytes)).toBe(true);
    expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(2);

    // In the bucket: the verified blob, whole, and nothing else under blobs/.
    const bucket = new S3Fixture(s3.target(), fleet.options.prefix);
    try {
      const blobKeys = (await bucket.keys()).filter((key) => key.startsWith('blobs/'));
      expect(blobKeys).toEqual([`blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`]);
      const store = bucket.store();
      expect(await store.stat((await import('../../src/domain/digest.js')).parseDigest(layer.digest))).toMatchObject({ size: layer.size });
    } finally {
      await bucket.close();
    }
  });
});
