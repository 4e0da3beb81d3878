import { afterEach, describe, expect, it } from 'vitest';
import { TooManyRequestsError } from '../../src/domain/errors.js';
import { parseQuota, UpstreamRateLimits } from '../../src/upstream/rate-limits.js';
import type { UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';
import { get, head, waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startObserved, type ObservedMirror } from './observed-mirror.js';

function response(overrides: Partial<UpstreamResponseInfo>): UpstreamResponseInfo {
  return { upstream: 'docker.io', method: 'GET', kind: 'manifest', status: 200, durationMs: 5, headers: {}, ...overrides };
}

describe('UpstreamRateLimits', () => {
  it('parses Docker Hub quota headers with and without a window', () => {
    expect(parseQuota('100;w=21600')).toEqual({ value: 100, windowSeconds: 21600 });
    expect(parseQuota(' 76 ; w=21600 ')).toEqual({ value: 76, windowSeconds: 21600 });
    expect(parseQuota('5000')).toEqual({ value: 5000, windowSeconds: undefined });
    expect(parseQuota('lots')).toBeUndefined();
    expect(parseQuota(undefined)).toBeUndefined();
  });

  it('keeps the latest values per upstream from manifest responses only', () => {
    let now = 1_000_000;
    const limits = new UpstreamRateLimits({ now: () => now });
    limits.observe(response({ headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '80;w=21600', 'docker-ratelimit-source': '203.0.113.7' } }));
    now += 1000;
    limits.observe(response({ method: 'HEAD', headers: { 'ratelimit-remaining': '79;w=21600' } }));
    limits.observe(response({ kind: 'blob', headers: { 'ratelimit-remaining': '1;w=21600' } }));
    expect(limits.snapshot()).toEqual([{ upstream: 'docker.io', limit: 100, remaining: 79, windowSeconds: 21600, source: '203.0.113.7', observedAtMs: now, blockedUntilMs: undefined }]);
  });

  it('after a 429 refuses manifest GETs until Retry-After has passed, or 60 s without one', () => {
    let now = 1_000_000;
    const limits = new UpstreamRateLimits({ now: () => now });
    limits.observe(response({ status: 429, headers: { 'retry-after': '30' } }));
    expect(limits.secondsBlocked('docker.io')).toBe(30);
    expect(() => limits.assertManifestGetAllowed('docker.io', 'GET x')).toThrow(TooManyRequestsError);
    expect(() => limits.assertManifestGetAllowed('ghcr.io', 'GET x')).not.toThrow();
    now += 29_500;
    try {
      limits.assertManifestGetAllowed('docker.io', 'GET x');
      expect.unreachable();
    } catch (error) {
      expect((error as TooManyRequestsError).retryAfterSeconds).toBe(1);
    }
    now += 500;
    expect(() => limits.assertManifestGetAllowed('docker.io', 'GET x')).not.toThrow();

    limits.observe(response({ kind: 'blob', status: 429, headers: {} }));
    expect(limits.secondsBlocked('docker.io')).toBe(60);
    limits.observe(response({ status: 429, headers: { 'retry-after': new Date(now + 120_000).toUTCString() } }));
    expect(limits.secondsBlocked('docker.io')).toBe(120);
  });
});

describe('a rate-limited upstream', () => {
  let setup: ObservedMirror | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });

  it('gets no manifest GET until Retry-After has passed; HEAD revalidation goes on and known tags are served stale', async () => {
    setup = await startObserved({ config: { tags: { ttlSeconds: 0 } } });
    const fake = setup.fake;
    const v1 = makeImage({ layers: [500], seed: 'rl-v1' });
    const v2 = makeImage({ layers: [500], seed: 'rl-v2' });
    pushImage(fake, 'library/redis', '7.2', v1);
    pushImage(fake, 'library/redis', 'uncached', v2);
    const manifestUrl = (tag: string) => `${setup!.url}/v2/library/redis/manifests/${tag}`;
    expect((await get(manifestUrl('7.2'))).status).toBe(200);

    // The upstream starts refusing: the next manifest GET earns a 429 with Retry-After: 3.
    fake.setFault('manifest', { status: 429, retryAfter: '3', times: 1 });
    const refused = await get(manifestUrl('uncached'));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    fake.resetCounts();

    // While paused: an uncached tag is answered 429 without asking the upstream ...
    const paused = await get(manifestUrl('uncached'));
    expect(paused.status).toBe(429);
    expect(Number(paused.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(paused.body.toString()).errors[0].code).toBe('TOOMANYREQUESTS');
    // ... and a known tag whose digest moved upstream is revalidated with a HEAD and served stale.
    pushImage(fake, 'library/redis', '7.2', v2);
    const stale = await get(manifestUrl('7.2'), { accept: v1.manifest.mediaType });
    expect(stale.status).toBe(200);
    expect(stale.headers['docker-content-digest']).toBe(v1.manifest.digest);
    expect((await head(manifestUrl('7.2'))).status).toBe(200);
    expect(fake.count({ server: 'registry', method: 'HEAD', pathIncludes: '/manifests/' })).toBeGreaterThanOrEqual(2);
    expect(fake.count({ server: 'registry', method: 'GET', pathIncludes: '/manifests/' })).toBe(0);

    // Once Retry-After has passed, GETs go again.
    await waitFor(() => setup!.mirror.observability.rateLimits.secondsBlocked('docker.io') === 0, 10_000, 'Retry-After to pass');
    const after = await get(manifestUrl('uncached'));
    expect(after.status).toBe(200);
    expect(after.headers['docker-content-digest']).toBe(v2.manifest.digest);
    expect(fake.count({ server: 'registry', method: 'GET', pathIncludes: '/manifests/' })).toBeGreaterThanOrEqual(1);
  });
});
