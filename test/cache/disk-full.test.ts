/**
 * Disk full (issue 5 item 5): an ENOSPC during a fill aborts that client and removes the temp
 * file; the mirror evicts least recently used blobs to make room and keeps serving what it has.
 * ENOSPC comes through the content store's file seam (fs-writer.ts) (no root, no tiny tmpfs needed).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { diskFillsUpAfter } from '../helpers/disk-full.js';
import { get, getChunks, waitFor } from '../helpers/http.js';
import { type CacheBed, MiB, pullImage, pushTestImage, sha256, startCacheBed, tempFiles } from './cache-fixture.js';

describe('disk full', () => {
  let bed: CacheBed | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await bed?.close();
    bed = undefined;
  });

  it('aborts the filling client, removes the temp file, evicts to make room and keeps serving', async () => {
    bed = await startCacheBed({ cache: { maxBytes: 8 * MiB } });
    const cached = pushTestImage(bed.fake, 'library/cached', 'v1', [MiB, MiB, MiB], 'cached');
    const incoming = pushTestImage(bed.fake, 'library/incoming', 'v1', [2 * MiB], 'incoming');
    await pullImage(bed.mirror.url, 'library/cached', 'v1', cached);
    const lru = bed.mirror.mirror.budget;
    // A client has its last byte once the digest is checked; the blob is counted after its fsync.
    await waitFor(() => lru.count === 4, 5_000, 'the pulled blobs to be counted');

    diskFillsUpAfter(1);
    const layer = incoming.layers[0]!;
    const failed = await getChunks(`${bed.mirror.url}/v2/library/incoming/blobs/${layer.digest}`);
    const received = Buffer.concat(failed.chunks);
    // The client is cut off: it never gets a complete, clean body.
    expect(failed.status !== 200 || failed.error !== undefined || received.length < layer.size).toBe(true);
    await waitFor(async () => (await tempFiles(bed!.mirror.cacheDir)).length === 0, 5_000, 'the temp file to be removed');
    // At least the failed blob's size was evicted, oldest first: the config and first layer of `cached`.
    await lru.idle();
    expect(lru.count).toBeLessThan(4);
    expect(lru.has(cached.layers[2]!.digest)).toBe(true);
    vi.restoreAllMocks();

    bed.fake.resetCounts();
    const stillCached = await get(`${bed.mirror.url}/v2/library/cached/blobs/${cached.layers[2]!.digest}`);
    expect(stillCached.status).toBe(200);
    expect(sha256(stillCached.body)).toBe(cached.layers[2]!.digest);
    expect(bed.fake.requests).toHaveLength(0);

    await pullImage(bed.mirror.url, 'library/incoming', 'v1', incoming);
    await pullImage(bed.mirror.url, 'library/cached', 'v1', cached);
  });
});
