/**
 * Manifest-driven prefetch (issue 16 item 3, config `fetch.prefetch`), on real sockets: an image
 * manifest fetched for a client starts the fetches of its config and layers, so the client's
 * blob requests join downloads already running; an index is not followed until a platform
 * manifest is asked for; a prefetch nobody joins lands in the cache; nothing is fetched twice;
 * and a prefetch goes only through the repository the client was allowed to read.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import type { RequestRecord } from '../helpers/fake-registry-wire.js';
import { basicAuth, get, waitFor } from '../helpers/http.js';
import { fillsSettled, startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, makeIndex, pushImage, type TestBlob, type TestImage } from '../helpers/test-images.js';
import { tempDir, writeHtpasswd, type TempDir } from '../security/security-fixture.js';
import { blobGets, deliveredExactly, isBlobCached, type E2eSetup, type E2eOptions, startE2e, streamGet } from './e2e-fixture.js';

const REPO = 'library/prefetched';
const KiB = 1024;

let e2e: E2eSetup | undefined;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(options: E2eOptions = {}): Promise<E2eSetup> {
  e2e = await startE2e({ ...options, config: { ...options.config, fetch: { prefetch: true, ...(options.config?.fetch as object | undefined) } } });
  return e2e;
}

function blobsOf(image: TestImage): TestBlob[] {
  return [image.config, ...image.layers];
}

async function getManifest(url: string, image: { manifest: TestBlob }, reference: string, headers: Record<string, string> = {}) {
  const response = await get(url.replace('{ref}', reference), { accept: image.manifest.mediaType, ...headers });
  return response;
}

/** The value of `registry_mirror_prefetch_blobs_total{outcome}` on the mirror's /metrics, 0 when absent. */
async function prefetched(mirror: MirrorUnderTest, outcome: string): Promise<number> {
  const text = (await get(`${mirror.url}/metrics`)).body.toString();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`registry_mirror_prefetch_blobs_total{outcome="${outcome}"} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

/** The upstream's blob transfers (the CDN's GETs after the registry's redirect), in the order they began. */
function transfers(fake: FakeRegistry): RequestRecord[] {
  return fake.requests.filter((record) => record.server === 'cdn' && record.method === 'GET').sort((a, b) => a.receivedAt - b.receivedAt);
}

function digestIn(path: string): string {
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}

/** The most of `records` in flight at one moment (each from its arrival until its response finished). */
function mostAtOnce(records: RequestRecord[]): number {
  const edges = records.flatMap((record) => [{ at: record.receivedAt, step: 1 }, { at: record.finishedAt ?? Infinity, step: -1 }]);
  // An end and a start at the same instant: the end first.
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let now = 0;
  let most = 0;
  for (const { step } of edges) most = Math.max(most, (now += step));
  return most;
}

describe('an image manifest fetched for a client', () => {
  it('starts the fetches of its config and layers; the client asking for them at once joins them: one upstream GET each', async () => {
    const setup = await start();
    const image = makeImage({ layers: [300 * KiB, 200 * KiB, 100 * KiB], seed: 'prefetch-join' });
    pushImage(setup.fake, REPO, 'latest', image);
    // Slow enough that every download is still running when the client asks.
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 400 * KiB });

    const manifest = await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), image, 'latest');
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
    // No client asked for a blob yet, and the upstream is already sending every one of them.
    await waitFor(() => blobsOf(image).every((blob) => blobGets(setup.fake, blob.digest) === 1), 10_000, 'the prefetches to reach the upstream');

    const responses = await Promise.all(blobsOf(image).map((blob) => streamGet(setup.url(`/v2/${REPO}/blobs/${blob.digest}`))));
    for (const [index, blob] of blobsOf(image).entries()) {
      expect(deliveredExactly(responses[index]!, blob.bytes)).toBe(true);
      expect(blobGets(setup.fake, blob.digest)).toBe(1);
    }
    expect(await prefetched(setup.mirror, 'started')).toBe(blobsOf(image).length);
  });

  it('a prefetch nobody joins completes and lands in the cache: the blobs are served later with zero upstream requests', async () => {
    const setup = await start();
    const image = makeImage({ layers: [150 * KiB, 3 * KiB], seed: 'prefetch-alone', mediaTypes: 'docker' });
    pushImage(setup.fake, REPO, 'v1', image);
    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), image, 'v1')).status).toBe(200);
    await waitFor(() => blobsOf(image).every((blob) => isBlobCached(setup.mirror, blob.digest)), 10_000, 'the prefetched blobs to be cached');
    await fillsSettled(setup.mirror);

    setup.fake.resetCounts();
    for (const blob of blobsOf(image)) expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${blob.digest}`)), blob.bytes)).toBe(true);
    expect(setup.fake.count()).toBe(0);
    // A second fetch of the manifest (by digest, from the cache) prefetches nothing more.
    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), image, image.manifest.digest)).status).toBe(200);
    expect(setup.fake.count()).toBe(0);
  });

  it('runs a window of downloads at a time, the first of the manifest first, and leaves slots for the client\'s own fetches', async () => {
    // fetch.maxConcurrent 4: the prefetch runs 3 downloads at once (prefetchWindow), so the one
    // slot left starts a blob the client asks for beyond the window at once.
    const setup = await start({ config: { fetch: { maxConcurrent: 4 } } });
    const image = makeImage({ layers: [32 * KiB, 32 * KiB, 32 * KiB, 32 * KiB, 32 * KiB, 32 * KiB], seed: 'prefetch-window' });
    pushImage(setup.fake, REPO, 'latest', image);
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 32 * KiB });
    const wanted = blobsOf(image);
    const last = wanted.at(-1)!;

    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), image, 'latest')).status).toBe(200);
    await waitFor(() => transfers(setup.fake).length >= 3, 10_000, 'the window\'s first three downloads');
    // The first three of the manifest (in any order: they start together), the config and two
    // layers that take about a second each.
    expect(transfers(setup.fake).slice(0, 3).map((record) => digestIn(record.path)).sort()).toEqual(wanted.slice(0, 3).map((blob) => blob.digest).sort());
    const client = streamGet(setup.url(`/v2/${REPO}/blobs/${last.digest}`));
    await waitFor(() => blobGets(setup.fake, last.digest) === 1, 10_000, 'the client\'s own download of the last layer');
    // It started beside the window, not behind it: before any prefetched layer had finished.
    const clientTransfer = transfers(setup.fake).find((record) => digestIn(record.path) === last.digest)!;
    const prefetchedLayers = transfers(setup.fake).filter((record) => record !== clientTransfer && digestIn(record.path) !== image.config.digest);
    expect(prefetchedLayers.filter((record) => (record.finishedAt ?? Infinity) <= clientTransfer.receivedAt)).toEqual([]);
    expect(deliveredExactly(await client, last.bytes)).toBe(true);

    await waitFor(() => wanted.every((blob) => isBlobCached(setup.mirror, blob.digest)), 20_000, 'every prefetched blob to be cached');
    await fillsSettled(setup.mirror);
    for (const blob of wanted) expect(blobGets(setup.fake, blob.digest)).toBe(1);
    // Never more than the window's three plus the client's one at a time.
    const records = transfers(setup.fake);
    expect(mostAtOnce(records)).toBe(4);
    expect(mostAtOnce(records.filter((record) => record !== clientTransfer))).toBe(3);
  });

  it('blobs already cached or already downloading are not fetched again', async () => {
    const setup = await start();
    const first = makeImage({ layers: [100 * KiB], seed: 'prefetch-shared' });
    // The second image shares the first one's layer, plus one of its own.
    const extra = makeImage({ layers: [50 * KiB], seed: 'prefetch-extra' });
    const second = { ...extra, layers: [first.layers[0]!, extra.layers[0]!] };
    const secondManifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: extra.manifest.mediaType,
      config: { mediaType: extra.config.mediaType, digest: extra.config.digest, size: extra.config.size },
      layers: second.layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    }));
    pushImage(setup.fake, REPO, 'one', first);
    for (const blob of blobsOf(extra)) setup.fake.addBlob(blob.bytes, REPO);
    setup.fake.putManifest(REPO, secondManifest, extra.manifest.mediaType, 'two');

    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), first, 'one')).status).toBe(200);
    await waitFor(() => blobsOf(first).every((blob) => isBlobCached(setup.mirror, blob.digest)), 10_000, 'the first image to be cached');
    await fillsSettled(setup.mirror);
    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), extra, 'two')).status).toBe(200);
    await waitFor(() => blobsOf(second).every((blob) => isBlobCached(setup.mirror, blob.digest)), 10_000, 'the second image to be cached');
    await fillsSettled(setup.mirror);

    for (const blob of [...blobsOf(first), ...second.layers, second.config]) expect(blobGets(setup.fake, blob.digest)).toBe(1);
    expect(await prefetched(setup.mirror, 'cached')).toBe(1);
    expect(await prefetched(setup.mirror, 'started')).toBe(blobsOf(first).length + 2);
  });
});

describe('an index', () => {
  it('is not followed; the platform manifest the client then asks for is, and only its blobs are fetched', async () => {
    const setup = await start();
    const amd64 = makeImage({ layers: [40 * KiB, 20 * KiB], seed: 'prefetch-amd64' });
    const arm64 = makeImage({ layers: [30 * KiB], seed: 'prefetch-arm64', platform: { architecture: 'arm64', os: 'linux' } });
    const index = makeIndex([amd64, arm64]);
    pushImage(setup.fake, REPO, 'multi', index);

    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), index, 'multi')).status).toBe(200);
    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), amd64, amd64.manifest.digest)).status).toBe(200);
    await waitFor(() => blobsOf(amd64).every((blob) => isBlobCached(setup.mirror, blob.digest)), 10_000, 'the platform image to be prefetched');
    await fillsSettled(setup.mirror);

    for (const blob of blobsOf(amd64)) expect(blobGets(setup.fake, blob.digest)).toBe(1);
    for (const blob of blobsOf(arm64)) expect(blobGets(setup.fake, blob.digest)).toBe(0);
    expect(setup.fake.count({ pathIncludes: arm64.manifest.digest })).toBe(0);
    expect(await prefetched(setup.mirror, 'started')).toBe(blobsOf(amd64).length);
  });
});

describe('fetch.prefetch: false', () => {
  it('fetches only what the client asks for', async () => {
    const setup = await start({ config: { fetch: { prefetch: false } } });
    const image = makeImage({ layers: [60 * KiB, 30 * KiB], seed: 'prefetch-off' });
    pushImage(setup.fake, REPO, 'latest', image);

    expect((await getManifest(setup.url(`/v2/${REPO}/manifests/{ref}`), image, 'latest')).status).toBe(200);
    // The client's own request for the config, served whole: a prefetch would have begun by then.
    expect(deliveredExactly(await streamGet(setup.url(`/v2/${REPO}/blobs/${image.config.digest}`)), image.config.bytes)).toBe(true);
    await fillsSettled(setup.mirror);

    expect(blobGets(setup.fake, image.config.digest)).toBe(1);
    for (const layer of image.layers) {
      expect(blobGets(setup.fake, layer.digest)).toBe(0);
      expect(isBlobCached(setup.mirror, layer.digest)).toBe(false);
    }
    expect(await prefetched(setup.mirror, 'started')).toBe(0);
  });
});

describe('private upstream repositories', () => {
  const PUBLIC = 'library/alpine';
  const PRIVATE = 'testuser/private';

  async function privateUpstream(): Promise<{ dir: TempDir; upstream: FakeRegistry; upstreams: Record<string, Record<string, unknown>> }> {
    const dir = await tempDir('mirror-prefetch-');
    cleanups.push(() => dir.remove());
    await writeHtpasswd(dir.file('htpasswd'), { carol: 'client-pw' });
    const upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
    cleanups.push(() => upstream.close());
    const upstreams = { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } };
    return { dir, upstream, upstreams };
  }

  async function mirrorOf(raw: Parameters<typeof startMirror>[0]): Promise<MirrorUnderTest> {
    const mirror = await startMirror({ ...raw, fetch: { prefetch: true } });
    cleanups.push(() => mirror.close());
    return mirror;
  }

  it('without client auth: a manifest refused to an anonymous client prefetches nothing', async () => {
    const { upstream, upstreams } = await privateUpstream();
    const image = makeImage({ layers: [20 * KiB], seed: 'prefetch-private' });
    const visible = makeImage({ layers: [10 * KiB], seed: 'prefetch-visible' });
    pushImage(upstream, PRIVATE, 'v1', image);
    pushImage(upstream, PUBLIC, 'v1', visible);
    const mirror = await mirrorOf({ upstreams });

    const refused = await getManifest(`${mirror.url}/v2/${PRIVATE}/manifests/{ref}`, image, 'v1');
    expect(refused.status).toBe(404);
    expect(JSON.parse(refused.body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
    // Then a public image, whose prefetch lands: a prefetch of the private one would have begun by then.
    expect((await getManifest(`${mirror.url}/v2/${PUBLIC}/manifests/{ref}`, visible, 'v1')).status).toBe(200);
    await waitFor(() => blobsOf(visible).every((blob) => isBlobCached(mirror, blob.digest)), 10_000, 'the public image to be prefetched');
    await fillsSettled(mirror);
    for (const blob of blobsOf(image)) {
      expect(upstream.count({ pathIncludes: `/blobs/${blob.digest}` })).toBe(0);
      expect(isBlobCached(mirror, blob.digest)).toBe(false);
    }
    expect(await prefetched(mirror, 'started')).toBe(blobsOf(visible).length);
  });

  it('without client auth: a public manifest naming a blob only a private repository holds prefetches it through the public one, which fails', async () => {
    const { upstream, upstreams } = await privateUpstream();
    const image = makeImage({ layers: [20 * KiB], seed: 'prefetch-smuggle' });
    const [secret] = image.layers as [TestBlob];
    upstream.addBlob(image.config.bytes, PUBLIC);
    upstream.addBlob(secret.bytes, PRIVATE);
    upstream.putManifest(PUBLIC, image.manifest.bytes, image.manifest.mediaType, 'smuggle');
    const mirror = await mirrorOf({ upstreams });

    expect((await getManifest(`${mirror.url}/v2/${PUBLIC}/manifests/{ref}`, image, 'smuggle')).status).toBe(200);
    await waitFor(async () => (await prefetched(mirror, 'started')) + (await prefetched(mirror, 'failed')) === 2, 10_000, 'both prefetches to end');
    await fillsSettled(mirror);
    expect(isBlobCached(mirror, image.config.digest)).toBe(true);
    expect(isBlobCached(mirror, secret.digest)).toBe(false);
    // Only ever asked for under the public name; never through the private repository.
    expect(upstream.count({ pathIncludes: `/${PRIVATE}/` })).toBe(0);
    const served = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${secret.digest}`);
    expect(served.status).toBe(404);
    expect(JSON.parse(served.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
  });

  it('with client auth: an unauthenticated client is challenged and nothing is fetched; an authenticated one gets the prefetch', async () => {
    const { dir, upstream, upstreams } = await privateUpstream();
    const image = makeImage({ layers: [20 * KiB, 10 * KiB], seed: 'prefetch-auth' });
    pushImage(upstream, PRIVATE, 'v1', image);
    const mirror = await mirrorOf({ upstreams, auth: { htpasswd: dir.file('htpasswd') } });

    const anonymous = await getManifest(`${mirror.url}/v2/${PRIVATE}/manifests/{ref}`, image, 'v1');
    expect(anonymous.status).toBe(401);
    expect(upstream.count()).toBe(0);

    const authorization = basicAuth('carol', 'client-pw');
    expect((await getManifest(`${mirror.url}/v2/${PRIVATE}/manifests/{ref}`, image, 'v1', { authorization })).status).toBe(200);
    await waitFor(() => blobsOf(image).every((blob) => isBlobCached(mirror, blob.digest)), 10_000, 'the private image to be prefetched for its client');
    await fillsSettled(mirror);
    await new Promise((r) => setTimeout(r, 1000)); console.log(upstream.requests.map((r) => `${r.server} ${r.method} ${r.path} ${r.status}`));
    for (const blob of blobsOf(image)) expect(upstream.count({ method: 'GET', pathIncludes: `/v2/${PRIVATE}/blobs/${blob.digest}` })).toBe(1);
  });
});
