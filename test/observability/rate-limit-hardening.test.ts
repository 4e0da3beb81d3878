/**
 * Rate limits that a hostile or broken upstream cannot abuse (issue 12 item 9): Retry-After is
 * capped at Docker Hub's 6-hour window, and only a 429 from the registry's own origin holds back
 * manifest GETs; one from a CDN hop or the token realm does not.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startObserved, type ObservedMirror } from './observed-mirror.js';

const SIX_HOURS = 6 * 60 * 60;
let setup: ObservedMirror | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

describe('upstream rate limits', () => {
  it('a huge Retry-After is capped at 6 hours, for the client and for the pause', async () => {
    setup = await startObserved({ logLevel: 'silent' });
    pushImage(setup.fake, 'library/redis', 'uncached', makeImage({ layers: [100], seed: 'rl-cap' }));
    setup.fake.setFault('manifest', { status: 429, retryAfter: '99999999999', times: 1 });
    const refused = await get(`${setup.url}/v2/library/redis/manifests/uncached`);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(SIX_HOURS);
    expect(setup.mirror.observability.rateLimits.secondsBlocked('docker.io')).toBeLessThanOrEqual(SIX_HOURS);
    expect(setup.mirror.observability.rateLimits.secondsBlocked('docker.io')).toBeGreaterThan(SIX_HOURS - 60);
  });

  it('a 429 from the CDN a blob was redirected to does not hold back manifest GETs', async () => {
    setup = await startObserved({ logLevel: 'silent' });
    const image = makeImage({ layers: [100], seed: 'rl-cdn' });
    const other = makeImage({ layers: [100], seed: 'rl-cdn-other' });
    pushImage(setup.fake, 'library/redis', 'latest', image);
    pushImage(setup.fake, 'library/redis', 'other', other);
    expect((await get(`${setup.url}/v2/library/redis/manifests/latest`)).status).toBe(200);
    setup.fake.setFault('blob', { status: 429, retryAfter: '3600', times: 1 });
    const blob = await get(`${setup.url}/v2/library/redis/blobs/${image.layers[0]!.digest}`);
    expect(blob.status).toBe(429);
    expect(setup.fake.count({ server: 'cdn', status: 429 })).toBe(1);
    expect(setup.mirror.observability.rateLimits.secondsBlocked('docker.io')).toBe(0);
    setup.fake.resetCounts();
    expect((await get(`${setup.url}/v2/library/redis/manifests/other`)).status).toBe(200);
    expect(setup.fake.count({ server: 'registry', method: 'GET', pathIncludes: '/manifests/other' })).toBe(1);
  });

  it('a 429 from the token realm does not hold back manifest GETs either', async () => {
    setup = await startObserved({ logLevel: 'silent' });
    pushImage(setup.fake, 'library/redis', 'a', makeImage({ layers: [100], seed: 'rl-token-a' }));
    setup.fake.setFault('token', { status: 429, retryAfter: '3600', times: 1 });
    expect((await get(`${setup.url}/v2/library/redis/manifests/a`)).status).toBe(429);
    expect(setup.mirror.observability.rateLimits.secondsBlocked('docker.io')).toBe(0);
    expect((await get(`${setup.url}/v2/library/redis/manifests/a`)).status).toBe(200);
  });

  it('a CDN that refuses the blob (403) is the upstream\'s fault: 502, not 403', async () => {
    setup = await startObserved({ logLevel: 'silent' });
    const image = makeImage({ layers: [100], seed: 'cdn-403' });
    pushImage(setup.fake, 'library/redis', 'latest', image);
    for (const status of [401, 403, 404]) {
      setup.fake.setFault('blob', { status, times: 1 });
      const blob = await get(`${setup.url}/v2/library/redis/blobs/${image.layers[0]!.digest}`);
      expect(blob.status, String(status)).toBe(502);
      expect(JSON.parse(blob.body.toString()).errors[0].code).toBe('UPSTREAM_ERROR');
    }
  });
});
