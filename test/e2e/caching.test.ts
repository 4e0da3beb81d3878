/**
 * What the cache saves (issue 2): a fresh tag and everything under it costs nothing upstream the
 * second time; a manifest by digest never goes upstream again; with `tags.ttlSeconds: 0` a tag is
 * revalidated with one HEAD (not counted by Docker Hub's pull limit) and fetched only when it
 * moved; bearer tokens are reused.
 */
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { get, getChunks, head, sha256 } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestImage } from '../helpers/test-images.js';
import { blobGets, cachedBlobPath, type E2eSetup, isBlobCached, startE2e, upstreamTotal } from './e2e-fixture.js';

const REPO = 'library/nginx';

let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

async function pullImage(setup: E2eSetup, tag: string, image: TestImage): Promise<void> {
  const manifest = await get(setup.url(`/v2/${REPO}/manifests/${tag}`));
  expect(manifest.status).toBe(200);
  expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
  for (const blob of [image.config, ...image.layers]) {
    const response = await get(setup.url(`/v2/${REPO}/blobs/${blob.digest}`));
    expect(response.status).toBe(200);
    expect(sha256(response.body)).toBe(blob.digest);
  }
  await fillsSettled(setup.mirror);
}

function manifestRequests(setup: E2eSetup, method: 'GET' | 'HEAD'): number {
  return setup.fake.count({ server: 'registry', method, pathIncludes: '/manifests/' });
}

describe('fresh tags', () => {
  it('the second pull of a fresh tag costs zero upstream requests (registry, CDN, token)', async () => {
    e2e = await startE2e();
    const image = makeImage({ layers: [10_000, 300_000], seed: 'cache-fresh' });
    pushImage(e2e.fake, REPO, 'stable', image);
    await pullImage(e2e, 'stable', image);
    expect(e2e.fake.count({ server: 'token' })).toBe(1);
    expect(e2e.fake.count({ server: 'cdn', method: 'GET' })).toBe(3);
    e2e.fake.resetCounts();

    await pullImage(e2e, 'stable', image);
    const head1 = await head(e2e.url(`/v2/${REPO}/manifests/stable`));
    expect(head1.status).toBe(200);
    expect(upstreamTotal(e2e.fake)).toBe(0);
  });

  it('a manifest by digest never goes upstream again, even with ttlSeconds 0', async () => {
    e2e = await startE2e({ config: { tags: { ttlSeconds: 0 } } });
    const image = makeImage({ layers: [100], seed: 'cache-digest' });
    const digest = pushImage(e2e.fake, REPO, 'v1', image);
    expect((await get(e2e.url(`/v2/${REPO}/manifests/${digest}`))).status).toBe(200);
    e2e.fake.resetCounts();
    for (let i = 0; i < 3; i++) {
      const response = await get(e2e.url(`/v2/${REPO}/manifests/${digest}`));
      expect(response.status).toBe(200);
      expect(response.body.equals(image.manifest.bytes)).toBe(true);
    }
    expect(upstreamTotal(e2e.fake)).toBe(0);
  });
});

describe('revalidation with ttlSeconds 0', () => {
  it('an unchanged tag costs exactly one HEAD and no GET per request', async () => {
    e2e = await startE2e({ config: { tags: { ttlSeconds: 0 } } });
    const image = makeImage({ layers: [100], seed: 'cache-revalidate' });
    pushImage(e2e.fake, REPO, 'latest', image);
    expect((await get(e2e.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
    e2e.fake.resetCounts();

    for (let round = 1; round <= 3; round++) {
      const response = await get(e2e.url(`/v2/${REPO}/manifests/latest`));
      expect(response.status).toBe(200);
      expect(response.body.equals(image.manifest.bytes)).toBe(true);
      expect(response.headers['docker-content-digest']).toBe(image.manifest.digest);
      expect(manifestRequests(e2e, 'HEAD')).toBe(round);
      expect(manifestRequests(e2e, 'GET')).toBe(0);
    }
    expect(e2e.fake.count({ server: 'token' })).toBe(0);
  });

  it('a tag that moved upstream is served with its new manifest (one HEAD, one GET)', async () => {
    e2e = await startE2e({ config: { tags: { ttlSeconds: 0 } } });
    const before = makeImage({ layers: [100], seed: 'cache-moved-1' });
    const after = makeImage({ layers: [100], seed: 'cache-moved-2' });
    pushImage(e2e.fake, REPO, 'latest', before);
    expect((await get(e2e.url(`/v2/${REPO}/manifests/latest`))).body.equals(before.manifest.bytes)).toBe(true);
    pushImage(e2e.fake, REPO, 'latest', after);
    e2e.fake.resetCounts();

    const moved = await get(e2e.url(`/v2/${REPO}/manifests/latest`));
    expect(moved.status).toBe(200);
    expect(moved.body.equals(after.manifest.bytes)).toBe(true);
    expect(moved.headers['docker-content-digest']).toBe(after.manifest.digest);
    expect(manifestRequests(e2e, 'HEAD')).toBe(1);
    expect(manifestRequests(e2e, 'GET')).toBe(1);

    // The index now holds the new digest: the next revalidation is a HEAD only.
    e2e.fake.resetCounts();
    expect((await get(e2e.url(`/v2/${REPO}/manifests/latest`))).body.equals(after.manifest.bytes)).toBe(true);
    expect(manifestRequests(e2e, 'HEAD')).toBe(1);
    expect(manifestRequests(e2e, 'GET')).toBe(0);
  });
});

describe('tokens', () => {
  it('one token serves many requests of one repository', async () => {
    e2e = await startE2e({ config: { tags: { ttlSeconds: 0 } } });
    const images = [1, 2, 3].map((n) => makeImage({ layers: [1000 * n], seed: `cache-token-${n}` }));
    images.forEach((image, n) => pushImage(e2e!.fake, REPO, `t${n}`, image));
    for (const [n, image] of images.entries()) await pullImage(e2e, `t${n}`, image);
    for (let n = 0; n < images.length; n++) expect((await get(e2e.url(`/v2/${REPO}/manifests/t${n}`))).status).toBe(200);
    expect(e2e.fake.count({ server: 'registry' })).toBeGreaterThan(10);
    expect(e2e.fake.count({ server: 'token' })).toBe(1);
  });
});

describe('a cached blob deleted behind the index', () => {
  it('is cut short once, forgotten, then pulled again and served right', async () => {
    e2e = await startE2e();
    const image = makeImage({ layers: [400_000], seed: 'cache-vanished' });
    pushImage(e2e.fake, REPO, 'gone', image);
    await pullImage(e2e, 'gone', image);
    const layer = image.layers[0]!;
    // Another process (verify, an operator) removes the file; this process's index still has it.
    await rm(cachedBlobPath(e2e.mirror, layer.digest));
    const failed = await getChunks(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`));
    expect(deliveredWhole(failed, layer.bytes)).toBe(false);
    e2e.fake.resetCounts();
    const again = await get(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`));
    expect(again.status).toBe(200);
    expect(sha256(again.body)).toBe(layer.digest);
    expect(blobGets(e2e.fake, layer.digest)).toBe(1);
    await fillsSettled(e2e.mirror);
    expect(isBlobCached(e2e.mirror, layer.digest)).toBe(true);
  });
});

function deliveredWhole(result: { status: number; chunks: Buffer[]; error?: Error }, bytes: Buffer): boolean {
  return result.status === 200 && result.error === undefined && Buffer.concat(result.chunks).equals(bytes);
}
