/**
 * Issue 5 "Done when": with a budget that fits about two of three images, pulling them in turn
 * keeps the blobs on disk within the budget (+5%), keeps the most recently used image, pulls an
 * evicted one again, never deletes a blob under its reader, and a restart costs no upstream
 * request for what is cached.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { parseDigest } from '../../src/domain/digest.js';
import { afterEach, describe, expect, it } from 'vitest';
import { get, sha256, waitFor } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { bytesUnder, type CacheBed, contentRequests, MiB, pullImage, pushTestImage, startCacheBed } from './cache-fixture.js';

const BUDGET = 7 * MiB;
const LAYERS = [MiB, MiB, 1.25 * MiB];

describe('cache budget', () => {
  let bed: CacheBed | undefined;
  afterEach(async () => {
    await bed?.close();
    bed = undefined;
  });

  it('accepts cache.maxBytes as a size string', async () => {
    bed = await startCacheBed({ cache: { maxBytes: '7MiB' } });
    expect(bed.mirror.mirror.budget.maxBytes).toBe(BUDGET);
  });

  it('keeps to the budget, keeps what was used last and pulls an evicted image again', async () => {
    bed = await startCacheBed({ cache: { maxBytes: BUDGET } });
    const { fake } = bed;
    const images = ['a', 'b', 'c'].map((name) => ({ repo: `library/${name}`, image: pushTestImage(fake, `library/${name}`, 'v1', LAYERS, name) }));
    const [a, b, c] = images as [typeof images[0], typeof images[0], typeof images[0]];
    const blobsDir = path.join(bed.mirror.cacheDir, 'blobs');
    const isCached = async (blob: { digest: string }) => (await bed!.mirror.mirror.content.stat(parseDigest(blob.digest))) !== undefined;

    // a, b, a again (a hit that must bump a's recency), then c: b is the one to go.
    for (const next of [a, b, a, c]) {
      await pullImage(bed.mirror.url, next.repo, 'v1', next.image);
      await fillsSettled(bed.mirror);
      expect(await bytesUnder(blobsDir)).toBeLessThanOrEqual(BUDGET * 1.05);
    }
    for (const blob of [c.image.config, ...c.image.layers]) expect(await isCached(blob)).toBe(true);
    for (const blob of a.image.layers) expect(await isCached(blob)).toBe(true);
    expect((await Promise.all(b.image.layers.map(isCached))).some((cached) => !cached)).toBe(true);

    fake.resetCounts();
    await pullImage(bed.mirror.url, c.repo, 'v1', c.image);
    expect(contentRequests(fake)).toBe(0);

    await pullImage(bed.mirror.url, b.repo, 'v1', b.image);
    expect(fake.count({ method: 'GET', pathIncludes: '/blobs/' })).toBeGreaterThan(0);
    await fillsSettled(bed.mirror);
    expect(await bytesUnder(blobsDir)).toBeLessThanOrEqual(BUDGET * 1.05);
  });

  it('makes room as a download writes: old blobs go as its bytes arrive, before the budget is exceeded', async () => {
    bed = await startCacheBed({ cache: { maxBytes: 3 * MiB } });
    const old = pushTestImage(bed.fake, 'library/old', 'v1', [MiB, MiB], 'old');
    const incoming = pushTestImage(bed.fake, 'library/new', 'v1', [1.5 * MiB], 'new');
    await pullImage(bed.mirror.url, 'library/old', 'v1', old);
    await fillsSettled(bed.mirror);
    bed.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 512 * 1024, times: 1 });
    const layer = incoming.layers[0]!;
    const download = get(`${bed.mirror.url}/v2/library/new/blobs/${layer.digest}`);
    const tmpDir = path.join(bed.mirror.cacheDir, 'tmp');
    await waitFor(async () => (await bytesUnder(tmpDir)) > 1.1 * MiB, 10_000, 'the fill to write more than the budget has left');
    await bed.mirror.mirror.budget.idle();
    // Mid-download: the least recently used blobs are already gone, and blobs plus the partial file fit.
    expect(bed.mirror.mirror.budget.has(old.config.digest)).toBe(false);
    expect((await bytesUnder(path.join(bed.mirror.cacheDir, 'blobs'))) + (await bytesUnder(tmpDir))).toBeLessThanOrEqual(3 * MiB * 1.05);
    const response = await download;
    expect(sha256(response.body)).toBe(layer.digest);
  });

  it('after a restart, a cached image costs zero upstream requests', async () => {
    bed = await startCacheBed({ cache: { maxBytes: BUDGET } });
    const image = pushTestImage(bed.fake, 'library/a', 'v1', LAYERS, 'restart');
    await pullImage(bed.mirror.url, 'library/a', 'v1', image);
    await fillsSettled(bed.mirror);
    await bed.restart();
    expect(bed.mirror.mirror.budget.count).toBe(1 + LAYERS.length);
    bed.fake.resetCounts();
    await pullImage(bed.mirror.url, 'library/a', 'v1', image);
    expect(bed.fake.requests).toHaveLength(0);
  });

  it('never deletes a blob under its reader: an evicted blob being read is removed once the read ends', async () => {
    // Large enough that socket buffers cannot swallow the whole body while the client waits.
    bed = await startCacheBed({ cache: { maxBytes: 48 * MiB } });
    const big = pushTestImage(bed.fake, 'library/big', 'v1', [32 * MiB], 'pinned');
    const other = pushTestImage(bed.fake, 'library/other', 'v1', [16 * MiB, 16 * MiB], 'evictor');
    await pullImage(bed.mirror.url, 'library/big', 'v1', big);
    await fillsSettled(bed.mirror);
    const layer = big.layers[0]!;
    const blobPath = path.join(bed.mirror.cacheDir, 'blobs', 'sha256', layer.digest.slice(7, 9), layer.digest.slice(7));

    // Start reading the cached layer, and stop consuming after the head: the response is pinned.
    const reader = await request(`${bed.mirror.url}/v2/library/big/blobs/${layer.digest}`);
    expect(reader.statusCode).toBe(200);
    await pullImage(bed.mirror.url, 'library/other', 'v1', other);
    await fillsSettled(bed.mirror);
    expect(bed.mirror.mirror.budget.has(layer.digest)).toBe(false);
    expect(existsSync(blobPath)).toBe(true);

    const body = Buffer.from(await reader.body.arrayBuffer());
    expect(sha256(body)).toBe(layer.digest);
    await waitFor(() => !existsSync(blobPath), 5_000, 'the evicted blob file to be deleted after its reader finished');
  });
});
