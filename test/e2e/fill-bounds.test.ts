/**
 * Bounds on cache fills (issue 12 item 8), on real sockets: anonymous clients asking for random
 * uncached digests and leaving at once must not queue upstream fetches that still run; the queue
 * per upstream has a bound (`fetch.maxQueued`, then 503 with Retry-After); and a fill no client
 * follows that hardly moves is abandoned (`fetch.abandonStalledSeconds`) instead of holding an
 * upstream slot until the fill deadline.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { get, waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { tempFiles } from '../cache/cache-fixture.js';
import { blobGets, deliveredExactly, type E2eSetup, type E2eOptions, startE2e, streamGet } from './e2e-fixture.js';

const REPO = 'library/bounds';
const MiB = 1024 * 1024;

let e2e: E2eSetup | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await e2e?.close();
  e2e = undefined;
});

async function start(options: E2eOptions, layers: number[]) {
  const setup = await startE2e(options);
  e2e = setup;
  const image = makeImage({ layers, seed: `bounds-${layers.join('-')}` });
  pushImage(setup.fake, REPO, 'latest', image);
  // A token is held from here on: the requests below are blob requests only.
  expect((await get(setup.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
  setup.fake.resetCounts();
  return { setup, image };
}

/** A client that sends a blob GET and then does nothing (until the test destroys its socket). */
function rawGet(setup: E2eSetup, digest: string): Socket {
  const { port } = new URL(setup.mirror.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET /v2/${REPO}/blobs/${digest} HTTP/1.1\r\nHost: mirror\r\n\r\n`);
  sockets.push(socket);
  return socket;
}

function randomDigest(): string {
  return `sha256:${randomBytes(32).toString('hex')}`;
}

function queued(setup: E2eSetup): number {
  return setup.mirror.mirror.limiter.stats('docker.io').queued;
}

function openDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('queued fetches whose clients left', () => {
  it('are dropped before they start: the upstream never sees them', async () => {
    const { setup, image } = await start({ config: { fetch: { maxConcurrent: 1 } } }, [MiB]);
    const slow = image.layers[0]!;
    // One slow fill (about 3 s) takes the only slot.
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: MiB / 3 });
    const holder = streamGet(setup.url(`/v2/${REPO}/blobs/${slow.digest}`));
    await waitFor(() => setup.mirror.mirror.downloads.list().length === 1, 10_000, 'the slow fill to start');

    const digests = Array.from({ length: 40 }, randomDigest);
    const leaving = digests.map((digest) => rawGet(setup, digest));
    await waitFor(() => queued(setup) === digests.length, 10_000, 'every request to be queued');
    for (const socket of leaving) socket.destroy();

    expect(deliveredExactly(await holder, slow.bytes)).toBe(true);
    await waitFor(() => queued(setup) === 0 && setup.mirror.mirror.limiter.stats('docker.io').active === 0, 10_000, 'the queue to empty');
    // Not one of the abandoned digests reached the registry or its CDN.
    for (const digest of digests) expect(setup.fake.count({ pathIncludes: digest.slice('sha256:'.length) })).toBe(0);
    expect(blobGets(setup.fake, slow.digest)).toBe(1);
  });

  it('a client that stays is served, though others queued for the same blob left', async () => {
    const { setup, image } = await start({ config: { fetch: { maxConcurrent: 1 } } }, [MiB, 300_000]);
    const [slow, wanted] = image.layers as [typeof image.layers[0], typeof image.layers[0]];
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 2 * MiB, times: 1 });
    const holder = streamGet(setup.url(`/v2/${REPO}/blobs/${slow.digest}`));
    await waitFor(() => setup.mirror.mirror.downloads.list().length === 1, 10_000, 'the slow fill to start');
    const leaving = [rawGet(setup, wanted.digest), rawGet(setup, wanted.digest)];
    const staying = streamGet(setup.url(`/v2/${REPO}/blobs/${wanted.digest}`));
    await waitFor(() => queued(setup) === 1, 10_000, 'the shared fetch to be queued');
    for (const socket of leaving) socket.destroy();
    expect(deliveredExactly(await holder, slow.bytes)).toBe(true);
    expect(deliveredExactly(await staying, wanted.bytes)).toBe(true);
    expect(blobGets(setup.fake, wanted.digest)).toBe(1);
  });
});

describe('fetch.maxQueued', () => {
  it('past the bound a request is answered 503 with Retry-After at once, and the queue keeps serving', async () => {
    const { setup, image } = await start({ config: { fetch: { maxConcurrent: 1, maxQueued: 2 } } }, [MiB, 1000, 2000, 3000]);
    const [slow, ...rest] = image.layers;
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 2 * MiB, times: 1 });
    const holder = streamGet(setup.url(`/v2/${REPO}/blobs/${slow!.digest}`));
    await waitFor(() => setup.mirror.mirror.downloads.list().length === 1, 10_000, 'the slow fill to start');
    const waiting = rest.slice(0, 2).map((layer) => streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`)));
    await waitFor(() => queued(setup) === 2, 10_000, 'two fetches to be queued');

    const refused = await get(setup.url(`/v2/${REPO}/blobs/${rest[2]!.digest}`), {}, { headersTimeoutMs: 5_000 });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(JSON.parse(refused.body.toString()).errors[0].code).toBe('UNAVAILABLE');
    expect(blobGets(setup.fake, rest[2]!.digest)).toBe(0);

    expect(deliveredExactly(await holder, slow!.bytes)).toBe(true);
    for (const [index, response] of (await Promise.all(waiting)).entries()) expect(deliveredExactly(response, rest[index]!.bytes)).toBe(true);
    expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${rest[2]!.digest}`)), rest[2]!.bytes)).toBe(true);
  });
});

describe('a stalled fill that no client follows', () => {
  it('is abandoned after fetch.abandonStalledSeconds: slot, temp file and descriptors freed, the next client fetches anew', async () => {
    const { setup, image } = await start({ config: { fetch: { maxConcurrent: 1, abandonStalledSeconds: 0.5 } } }, [MiB, 2000]);
    const [stalled, other] = image.layers as [typeof image.layers[0], typeof image.layers[0]];
    const baseline = openDescriptors();
    // 1 KiB/s: never silent long enough for the body timeout, never done before the fill deadline.
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 1024, times: 1 });
    const leaving = await streamGet(setup.url(`/v2/${REPO}/blobs/${stalled.digest}`), { stopAfterBytes: 1 });
    expect(leaving.status).toBe(200);

    await waitFor(() => setup.mirror.mirror.downloads.list().length === 0, 10_000, 'the stalled fill to be abandoned');
    await waitFor(async () => (await tempFiles(setup.mirror.cacheDir)).length === 0, 5_000, 'its temp file to be removed');
    // The slot is free: another blob is fetched at once.
    expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${other.digest}`)), other.bytes)).toBe(true);
    await waitFor(() => openDescriptors() <= baseline + 2, 5_000, 'the descriptors of the abandoned fill to be closed');
    // Nothing partial was kept: the next client fetches it again, whole.
    expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${stalled.digest}`)), stalled.bytes)).toBe(true);
    expect(blobGets(setup.fake, stalled.digest)).toBe(2);
  });

  it('a slow fill a client follows is not abandoned', async () => {
    const { setup, image } = await start({ config: { fetch: { abandonStalledSeconds: 0.3 } } }, [40_000]);
    const layer = image.layers[0]!;
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 32 * 1024, times: 1 });
    expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`)), layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
  });
});
