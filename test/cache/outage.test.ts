/**
 * Tags through upstream outages (manifest-resolver.ts): fresh within tags.ttlSeconds, then one
 * HEAD to revalidate; stale while the upstream is down, 5xx or 429, for as long as
 * tags.staleIfErrorSeconds allows (default: no limit).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { get } from '../helpers/http.js';
import type { TestImage } from '../helpers/test-images.js';
import { type CacheBed, pushTestImage, sha256, startCacheBed } from './cache-fixture.js';

const REPO = 'library/app';

async function sleepUntil(atMs: number): Promise<void> {
  // A bounded wait: the deadline is the target time itself.
  while (Date.now() < atMs) await new Promise((resolve) => setTimeout(resolve, Math.min(50, atMs - Date.now())));
}

describe('tags through outages', () => {
  let bed: CacheBed | undefined;
  let image: TestImage;
  afterEach(async () => {
    vi.useRealTimers();
    await bed?.close();
    bed = undefined;
  });

  async function start(tags: Record<string, unknown>): Promise<{ fetchedAt: number }> {
    bed = await startCacheBed({ tags });
    image = pushTestImage(bed.fake, REPO, 'v1', [1024], 'outage');
    expect((await getTag()).status).toBe(200);
    // Taken after the answer: the mirror's checkedAt is no later than this.
    const fetchedAt = Date.now();
    bed.fake.resetCounts();
    return { fetchedAt };
  }

  const getTag = () => get(`${bed!.mirror.url}/v2/${REPO}/manifests/v1`, { accept: image.manifest.mediaType });
  const manifestRequests = (method: string) => bed!.fake.count({ method, pathIncludes: '/manifests/' });

  it('with ttlSeconds 2: no upstream request within 2 s, then one HEAD and no manifest GET', async () => {
    const { fetchedAt } = await start({ ttlSeconds: 2 });
    const fresh = await getTag();
    expect(fresh.status).toBe(200);
    expect(bed!.fake.requests).toHaveLength(0);

    await sleepUntil(fetchedAt + 2_100);
    const revalidated = await getTag();
    expect(revalidated.status).toBe(200);
    expect(sha256(revalidated.body)).toBe(image.manifest.digest);
    expect(manifestRequests('HEAD')).toBe(1);
    expect(manifestRequests('GET')).toBe(0);
  });

  it('serves stale within staleIfErrorSeconds and fails beyond it', async () => {
    const { fetchedAt } = await start({ ttlSeconds: 1, staleIfErrorSeconds: 1 });
    bed!.fake.setFault('manifest', { status: 503 });

    await sleepUntil(fetchedAt + 1_100);
    const stale = await getTag();
    expect(stale.status).toBe(200);
    expect(sha256(stale.body)).toBe(image.manifest.digest);

    await sleepUntil(fetchedAt + 2_200);
    const expired = await getTag();
    expect(expired.status).toBe(503);
    expect(manifestRequests('GET')).toBe(0);
  });

  it.each([
    ['5xx', { status: 500 }],
    ['429', { status: 429, retryAfter: '1' }],
  ])('serves stale with no limit by default (upstream %s, 30 days later)', async (_name, fault) => {
    await start({ ttlSeconds: 1 });
    bed!.fake.setFault('manifest', fault);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 30 * 24 * 3600 * 1000);
    const stale = await getTag();
    expect(stale.status).toBe(200);
    expect(sha256(stale.body)).toBe(image.manifest.digest);
  });

  it('serves stale while the upstream is unreachable', async () => {
    const { fetchedAt } = await start({ ttlSeconds: 1 });
    await bed!.fake.close();
    await sleepUntil(fetchedAt + 1_100);
    const stale = await getTag();
    expect(stale.status).toBe(200);
    expect(sha256(stale.body)).toBe(image.manifest.digest);
  });
});
