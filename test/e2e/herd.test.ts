/**
 * The thundering herd (issue 3): one upstream download per blob however many clients want it,
 * streamed to all of them as it arrives; a client hanging up does not stop the fill; a bounded
 * number of downloads per upstream (`fetch.maxConcurrent`); one manifest GET per tag; and a
 * download that fails mid-way fails every client that joined it, after which the next request
 * starts afresh.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, sha256, waitFor } from '../helpers/http.js';
import { makeImage, pushImage, type TestBlob, type TestImage } from '../helpers/test-images.js';
import { blobGets, deliveredExactly, type E2eSetup, type E2eOptions, isBlobCached, startE2e, streamGet, upstreamTotal } from './e2e-fixture.js';

const REPO = 'library/herd';
const MiB = 1024 * 1024;

let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

/** Starts the pair with one image pushed and its manifest pulled, so a token is already held. */
async function startWithImage(layers: number[], seed: string, options: E2eOptions = {}): Promise<{ setup: E2eSetup; image: TestImage; layer: TestBlob }> {
  const setup = await startE2e(options);
  e2e = setup;
  const image = makeImage({ layers, seed });
  pushImage(setup.fake, REPO, 'latest', image);
  expect((await get(setup.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
  setup.fake.resetCounts();
  return { setup, image, layer: image.layers[0]! };
}

function download(setup: E2eSetup, digest: string) {
  return setup.mirror.mirror.downloads.list().find((entry) => entry.digest === digest);
}

function waitForBytesWritten(setup: E2eSetup, digest: string, atLeast: number): Promise<void> {
  return waitFor(() => (download(setup, digest)?.bytesWritten ?? 0) >= atLeast, 10_000, `${atLeast} bytes of ${digest} written`);
}

function waitForDownloadsToSettle(setup: E2eSetup): Promise<void> {
  return waitFor(() => setup.mirror.mirror.downloads.list().length === 0, 15_000, 'downloads to settle');
}

describe('one download, many clients', () => {
  it('20 concurrent GETs of an uncached 8 MB blob: all get the right bytes, the CDN saw 1 GET', async () => {
    const { setup, layer } = await startWithImage([8 * MiB], 'herd-20');
    const url = setup.url(`/v2/${REPO}/blobs/${layer.digest}`);
    const responses = await Promise.all(Array.from({ length: 20 }, () => streamGet(url)));
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.error).toBeUndefined();
      expect(response.digest).toBe(layer.digest);
    }
    expect(setup.fake.count({ server: 'cdn', method: 'GET', pathIncludes: layer.digest })).toBe(1);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
  });

  it('a client asking under another repository name joins the running download', async () => {
    const { setup, layer } = await startWithImage([4 * MiB], 'herd-other-repo');
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const first = streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`));
    await waitForBytesWritten(setup, layer.digest, 1);
    const other = streamGet(setup.url(`/v2/library/elsewhere/blobs/${layer.digest}`));
    for (const response of await Promise.all([first, other])) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
    expect(setup.fake.count({ pathIncludes: 'library/elsewhere' })).toBe(0);
  });

  it('a client joining mid-download gets its first bytes before the download has finished', async () => {
    const { setup, layer } = await startWithImage([4 * MiB], 'herd-early-bytes');
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 2 * MiB });
    const first = streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`));
    // About 500 ms into a 2 s download.
    await waitForBytesWritten(setup, layer.digest, MiB);
    let atFirstChunk: { digest: string; bytesWritten: number } | undefined;
    const joiner = await streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`), {
      onFirstChunk: () => (atFirstChunk = download(setup, layer.digest)),
    });
    expect(atFirstChunk).toBeDefined();
    expect(atFirstChunk!.bytesWritten).toBeLessThan(layer.size);
    expect(deliveredExactly(joiner, layer.bytes)).toBe(true);
    expect(deliveredExactly(await first, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
  });

  it('the first client hanging up early does not stop the others, and the blob is cached', async () => {
    const { setup, layer } = await startWithImage([4 * MiB], 'herd-abort');
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const url = setup.url(`/v2/${REPO}/blobs/${layer.digest}`);
    const quitter = await streamGet(url, { stopAfterBytes: 1 });
    expect(quitter.status).toBe(200);
    expect(quitter.body.length).toBeLessThan(layer.size);
    expect(download(setup, layer.digest)).toBeDefined();

    const others = await Promise.all([1, 2, 3].map(() => streamGet(url)));
    for (const response of others) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
    await waitForDownloadsToSettle(setup);
    expect(isBlobCached(setup.mirror, layer.digest)).toBe(true);

    setup.fake.setFault('blob', null);
    setup.fake.resetCounts();
    const later = await streamGet(url);
    expect(deliveredExactly(later, layer.bytes)).toBe(true);
    expect(upstreamTotal(setup.fake)).toBe(0);
  });

  it('the only client hanging up still lets the fill finish', async () => {
    const { setup, layer } = await startWithImage([2 * MiB], 'herd-abandoned');
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const url = setup.url(`/v2/${REPO}/blobs/${layer.digest}`);
    await streamGet(url, { stopAfterBytes: 1 });
    await waitForDownloadsToSettle(setup);
    expect(isBlobCached(setup.mirror, layer.digest)).toBe(true);
    setup.fake.resetCounts();
    expect(deliveredExactly(await streamGet(url), layer.bytes)).toBe(true);
    expect(upstreamTotal(setup.fake)).toBe(0);
  });
});

describe('fetch.maxConcurrent', () => {
  it('4 different slow blobs with maxConcurrent 2: all succeed, never more than 2 upstream GETs at once', async () => {
    const setup = await startE2e({ config: { fetch: { maxConcurrent: 2 } } });
    e2e = setup;
    const image = makeImage({ layers: [MiB, MiB, MiB, MiB], seed: 'herd-limit' });
    pushImage(setup.fake, REPO, 'latest', image);
    expect((await get(setup.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 2 * MiB });

    let maxActive = 0;
    let sawQueued = false;
    let maxAtCdn = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        const stats = setup.mirror.mirror.limiter.stats('docker.io');
        maxActive = Math.max(maxActive, stats.active);
        sawQueued ||= stats.queued > 0;
        // A slot is released only after the blob is committed and indexed, so GETs sent minus
        // blobs indexed is the number of transfers the CDN has open.
        const atCdn = setup.fake.count({ server: 'cdn', method: 'GET' }) - setup.mirror.mirror.budget.count;
        maxAtCdn = Math.max(maxAtCdn, atCdn);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const responses = await Promise.all(image.layers.map((layer) => streamGet(setup.url(`/v2/${REPO}/blobs/${layer.digest}`))));
    running = false;
    await sampler;

    image.layers.forEach((layer, index) => expect(deliveredExactly(responses[index]!, layer.bytes)).toBe(true));
    expect(maxActive).toBeLessThanOrEqual(2);
    expect(maxActive).toBe(2);
    expect(sawQueued).toBe(true);
    expect(maxAtCdn).toBeLessThanOrEqual(2);
    expect(setup.fake.count({ server: 'cdn', method: 'GET' })).toBe(4);
  });
});

describe('manifests', () => {
  it('concurrent GETs of the same uncached tag cost 1 upstream manifest GET', async () => {
    const setup = await startE2e();
    e2e = setup;
    const image = makeImage({ layers: [10], seed: 'herd-manifest' });
    pushImage(setup.fake, REPO, 'latest', image);
    setup.fake.setFault('manifest', { mode: 'slow', bytesPerSecond: 2000 });
    const responses = await Promise.all(Array.from({ length: 10 }, () => get(setup.url(`/v2/${REPO}/manifests/latest`))));
    for (const response of responses) {
      expect(response.status).toBe(200);
      expect(response.body.equals(image.manifest.bytes)).toBe(true);
      expect(response.headers['docker-content-digest']).toBe(image.manifest.digest);
    }
    expect(setup.fake.count({ server: 'registry', method: 'GET', pathIncludes: '/manifests/', status: 200 })).toBe(1);
    expect(setup.fake.count({ server: 'token' })).toBe(1);
  });
});

describe('a download that fails mid-way', () => {
  it('(fill deadline) aborts every client that joined it; the next request starts a fresh fetch', async () => {
    const { setup, layer } = await startWithImage([4 * MiB], 'herd-deadline', { config: { fetch: { fillTimeoutSeconds: 2 } } });
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: MiB });
    const url = setup.url(`/v2/${REPO}/blobs/${layer.digest}`);
    const first = streamGet(url);
    await waitForBytesWritten(setup, layer.digest, 1);
    const joiners = [1, 2, 3, 4].map(() => streamGet(url));
    const responses = await Promise.all([first, ...joiners]);
    for (const response of responses) {
      expect(deliveredExactly(response, layer.bytes)).toBe(false);
      expect(response.status === 0 || response.error !== undefined || response.body.length < layer.size).toBe(true);
    }
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
    await waitForDownloadsToSettle(setup);
    expect(isBlobCached(setup.mirror, layer.digest)).toBe(false);

    setup.fake.setFault('blob', null);
    const fresh = await streamGet(url);
    expect(deliveredExactly(fresh, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(2);
  });

  it('(connection reset) no client sees a clean complete body; the next request starts a fresh fetch', async () => {
    const { setup, layer } = await startWithImage([8 * MiB], 'herd-reset');
    setup.fake.setFault('blob', { mode: 'reset' });
    const url = setup.url(`/v2/${REPO}/blobs/${layer.digest}`);
    const responses = await Promise.all(Array.from({ length: 8 }, () => streamGet(url)));
    for (const response of responses) {
      expect(deliveredExactly(response, layer.bytes)).toBe(false);
      expect(response.digest).not.toBe(layer.digest);
    }
    await waitForDownloadsToSettle(setup);
    expect(isBlobCached(setup.mirror, layer.digest)).toBe(false);

    setup.fake.setFault('blob', null);
    const before = blobGets(setup.fake, layer.digest);
    expect(before).toBeGreaterThanOrEqual(1);
    const fresh = await streamGet(url);
    expect(deliveredExactly(fresh, layer.bytes)).toBe(true);
    expect(sha256(fresh.body)).toBe(layer.digest);
    expect(blobGets(setup.fake, layer.digest)).toBe(before + 1);
  });
});
