/**
 * Issue 15, done-when 1: three replicas sharing one bucket and one Redis, 60 concurrent clients
 * on a cold blob, 20 per replica: exactly one upstream GET in the whole fleet, the right bytes
 * for every client, and the clients of the replicas that did not win the lease get bytes before
 * the owner's download from the upstream has ended (they stream it; they do not wait for it).
 * Real processes (`dist/main.js serve`), a real Redis, a real S3 (Ceph RGW).
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { redisServerInstalled } from '../helpers/redis-server.js';
import { useS3 } from '../helpers/s3-suite.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { S3Fixture } from '../storage/s3-fixture.js';
import { deliveredExactly, leaseOwner, timedGet, upstreamBlobGets } from './fleet-support.js';
import { useFleets } from './replica-fleet.js';

const s3 = useS3();
const MiB = 2 ** 20;
const REPO = 'library/herd';

describe.skipIf(!s3.available || !redisServerInstalled())('a herd across three replicas', () => {
  const fleets = useFleets(s3);

  it('60 clients, 20 per replica, on a cold 8 MiB blob: 1 upstream GET, right bytes everywhere, non-owners stream before the owner is done', { timeout: 120_000 }, async () => {
    const { fake, fleet } = await fleets.open();
    const image = makeImage({ layers: [8 * MiB], seed: 'fleet-herd' });
    pushImage(fake, REPO, 'latest', image);
    const layer = image.layers[0]!;
    const replicas = await fleet.start(3);
    // At least two seconds from the upstream, so the herd overlaps the download.
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });

    const clients = replicas.flatMap((replica) => Array.from({ length: 20 }, () => timedGet(`${replica.url}/v2/${REPO}/blobs/${layer.digest}`).then((response) => ({ replica, response }))));
    const owner = await leaseOwner(fleets.redis().url, `blob ${layer.digest}`);
    const results = await Promise.all(clients);

    const gets = upstreamBlobGets(fake, layer.digest);
    expect(gets).toHaveLength(1);
    for (const { response } of results) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    const ownerReplica = replicas.find((replica) => replica.url === owner);
    expect(ownerReplica, `lease owner ${owner}`).toBeDefined();
    const others = results.filter(({ replica }) => replica !== ownerReplica);
    expect(others).toHaveLength(40);
    const upstreamDone = gets[0]!.finishedAt!;
    for (const { response } of others) expect(response.firstByteAt!).toBeLessThan(upstreamDone);

    // Nothing but the verified blob is left in the bucket: no temporary key, no upload in progress.
    const bucket = new S3Fixture(s3.target(), fleet.options.prefix);
    try {
      expect(await bucket.keys()).toEqual([`blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}`]);
      expect(await bucket.multipartUploads()).toEqual([]);
    } finally {
      await bucket.close();
    }
  });

  it('two replicas of two workers each, 40 clients on a cold blob: 1 upstream GET, right bytes everywhere', { timeout: 120_000 }, async () => {
    const { fake, fleet } = await fleets.open({ workers: 2 });
    const image = makeImage({ layers: [8 * MiB], seed: 'fleet-herd-workers' });
    pushImage(fake, REPO, 'workers', image);
    const layer = image.layers[0]!;
    const replicas = await fleet.start(2);
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const responses = await Promise.all(replicas.flatMap((replica) => Array.from({ length: 20 }, () => timedGet(`${replica.url}/v2/${REPO}/blobs/${layer.digest}`))));
    for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(1);
    // Every worker of both machines served the herd, and the machine that lost streamed it.
    const served = () => replicas.flatMap((replica) => replica.log().split('\n').filter((line) => line.includes('"msg":"request"') && line.includes(layer.digest)).map((line) => ({ replica: replica.index, ...(JSON.parse(line) as { worker: number; cache: string; path: string }) })));
    // The access log lines reach the log files a moment after the responses.
    await waitFor(() => served().filter((line) => line.path.startsWith('/v2/')).length === 40, 10_000, 'the access log lines');
    const clients = served().filter((line) => line.path.startsWith('/v2/'));
    expect(new Set(clients.map((line) => `${line.replica}/${line.worker}`)).size).toBe(4);
    expect(clients.filter((line) => line.cache === 'upstream')).toHaveLength(1);
    expect(clients.filter((line) => line.cache !== 'upstream' && line.cache !== 'joined')).toEqual([]);
  });
});
