/**
 * Issue 12 item 7: one answer must not empty the cache. A fill counts against the budget as its
 * bytes arrive, never by the size the upstream announced: an upstream announcing far more than
 * it sends evicts nothing it does not need to, and after ENOSPC eviction frees what was written.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { diskFillsUpAfter } from '../helpers/disk-full.js';
import { getChunks, waitFor } from '../helpers/http.js';
import { type CacheBed, MiB, pullImage, pushTestImage, startCacheBed } from './cache-fixture.js';

const BUDGET = 8 * MiB;
const CACHED_LAYERS = [MiB, MiB, MiB, MiB, MiB, MiB];

describe('a fill counts against the budget as bytes arrive', () => {
  let bed: CacheBed | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await bed?.close();
    bed = undefined;
  });

  async function cacheSixBlobs(): Promise<{ bed: CacheBed; recheck: () => Promise<number> }> {
    const started = await startCacheBed({ cache: { maxBytes: BUDGET } });
    bed = started;
    const cached = pushTestImage(started.fake, 'library/cached', 'v1', CACHED_LAYERS, 'lying-cached');
    await pullImage(started.mirror.url, 'library/cached', 'v1', cached);
    /** Pulls the cached image again; returns how many of its blobs had to come from the upstream. */
    const recheck = async () => {
      started.fake.resetCounts();
      await pullImage(started.mirror.url, 'library/cached', 'v1', cached);
      return started.fake.count({ method: 'GET', pathIncludes: '/blobs/' });
    };
    return { bed: started, recheck };
  }

  it('an upstream announcing 7.5 MiB and sending 64 KiB evicts no cached blob', async () => {
    const { bed, recheck } = await cacheSixBlobs();
    const liar = pushTestImage(bed.fake, 'library/liar', 'v1', [64 * 1024], 'liar');
    bed.fake.setFault('blob', { announceLength: 7.5 * MiB, times: 1 });
    const failed = await getChunks(`${bed.mirror.url}/v2/library/liar/blobs/${liar.layers[0]!.digest}`);
    expect(failed.status !== 200 || failed.error !== undefined).toBe(true);
    expect(await recheck()).toBe(0);
  });

  it('after ENOSPC, frees about what the failed fill wrote, not what the upstream announced', async () => {
    const { bed, recheck } = await cacheSixBlobs();
    const liar = pushTestImage(bed.fake, 'library/liar', 'v1', [2 * MiB], 'liar-enospc');
    bed.fake.setFault('blob', { announceLength: 7.5 * MiB, times: 1 });
    diskFillsUpAfter(1);
    const failed = await getChunks(`${bed.mirror.url}/v2/library/liar/blobs/${liar.layers[0]!.digest}`);
    expect(failed.status !== 200 || failed.error !== undefined).toBe(true);
    vi.restoreAllMocks();
    // One chunk was written before the disk filled up: about 1% of the budget is freed, least
    // recently used first, which is the image's config and its first 1 MiB layer at most.
    await waitFor(() => bed.mirror.mirror.downloads.list().length === 0, 5_000, 'the failed fill to settle');
    await bed.mirror.mirror.budget.idle();
    const refetched = await recheck();
    expect(refetched).toBeGreaterThanOrEqual(1);
    expect(refetched).toBeLessThanOrEqual(2);
  });
});

