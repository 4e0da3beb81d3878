import { afterEach, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { pullImage, startObserved, type ObservedMirror } from './observed-mirror.js';

/** The value of one sample line, e.g. `registry_mirror_cache_hits_total{kind="blob",result="cache"} 3`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = (match[2] ?? '').split(',');
    if (wanted.every((label) => present.includes(label))) return Number(match[3]);
  }
  return undefined;
}

function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match && match[1] === name && wanted.every((label) => (match[2] ?? '').split(',').includes(label))) total += Number(match[3]);
  }
  return total;
}

describe('/metrics', () => {
  let setup: ObservedMirror | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });

  it('shows hits and misses, bytes by source, and typed upstream request metrics after a cold and a warm pull', async () => {
    setup = await startObserved({ fake: { rateLimitHeaders: { limit: 100, remaining: 76, windowSeconds: 21600, source: '203.0.113.7' } } });
    const image = makeImage({ layers: [40_000, 3_000], seed: 'metrics' });
    pushImage(setup.fake, 'library/alpine', '3.20', image);
    const blobBytes = image.config.size + image.layers.reduce((total, layer) => total + layer.size, 0);

    await pullImage(setup.url, 'library/alpine', '3.20', image); // cold
    await fillsSettled(setup);
    await pullImage(setup.url, 'library/alpine', '3.20', image); // warm

    const response = await get(`${setup.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    const text = response.body.toString();
    expect(text).toContain('# TYPE registry_mirror_upstream_requests_total counter');
    expect(text).toContain('# TYPE registry_mirror_upstream_request_duration_seconds histogram');
    expect(text).toContain('# TYPE registry_mirror_cache_hits_total counter');
    expect(text).toContain('# TYPE registry_mirror_cache_misses_total counter');

    expect(sample(text, 'registry_mirror_cache_misses_total', { kind: 'manifest', result: 'upstream' })).toBe(1);
    expect(sample(text, 'registry_mirror_cache_hits_total', { kind: 'manifest', result: 'cache' })).toBe(1);
    expect(sample(text, 'registry_mirror_cache_misses_total', { kind: 'blob', result: 'upstream' })).toBe(3);
    expect(sample(text, 'registry_mirror_cache_hits_total', { kind: 'blob', result: 'cache' })).toBe(3);
    expect(sum(text, 'registry_mirror_served_bytes_total', { source: 'cache' })).toBe(blobBytes + image.manifest.size);
    expect(sum(text, 'registry_mirror_served_bytes_total', { source: 'upstream' })).toBe(blobBytes + image.manifest.size);

    expect(sample(text, 'registry_mirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', kind: 'manifest', status: '200' })).toBe(1);
    // Bearer auth: the first try earns the challenge (401), the retry with a token the manifest.
    expect(sample(text, 'registry_mirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', kind: 'manifest', status: '401' })).toBe(1);
    expect(sample(text, 'registry_mirror_upstream_requests_total', { upstream: 'docker.io', method: 'GET', kind: 'token', status: '200' })).toBe(1);
    expect(sum(text, 'registry_mirror_upstream_request_duration_seconds_count', { upstream: 'docker.io', kind: 'manifest' })).toBe(2);
    expect(sample(text, 'registry_mirror_http_requests_total', { route: 'blobs', method: 'GET', status: '200' })).toBe(6);
    expect(sample(text, 'registry_mirror_cache_blobs')).toBe(3);
    expect(sample(text, 'registry_mirror_cache_bytes')).toBe(blobBytes);
    expect(sample(text, 'registry_mirror_fetches_in_flight')).toBe(0);
    expect(sample(text, 'registry_mirror_fetches_queued', { upstream: 'docker.io' })).toBe(0);
  });

  it('exports the ratelimit-remaining value the upstream sent last, per upstream', async () => {
    setup = await startObserved({ fake: { rateLimitHeaders: { limit: 100, remaining: 76, windowSeconds: 21600, source: '203.0.113.7' } } });
    const image = makeImage({ layers: [1000], seed: 'ratelimit' });
    pushImage(setup.fake, 'library/busybox', 'latest', image);
    const before = (await get(`${setup.url}/metrics`)).body.toString();
    expect(sample(before, 'registry_mirror_upstream_ratelimit_remaining', { upstream: 'docker.io' })).toBeUndefined();

    await pullImage(setup.url, 'library/busybox', 'latest', image);

    const text = (await get(`${setup.url}/metrics`)).body.toString();
    expect(text).toContain('# TYPE registry_mirror_upstream_ratelimit_remaining gauge');
    expect(sample(text, 'registry_mirror_upstream_ratelimit_remaining', { upstream: 'docker.io' })).toBe(76);
    expect(sample(text, 'registry_mirror_upstream_ratelimit_limit', { upstream: 'docker.io' })).toBe(100);

    const status = JSON.parse((await get(`${setup.url}/api/status`)).body.toString());
    expect(status.rateLimits).toEqual([expect.objectContaining({ upstream: 'docker.io', limit: 100, remaining: 76, windowSeconds: 21600, source: '203.0.113.7', blockedForSeconds: 0 })]);
  });

  it('keeps metrics per mirror: two mirrors in one process do not share counters', async () => {
    setup = await startObserved();
    const other = await startObserved();
    try {
      await get(`${setup.url}/v2/`);
      const mine = (await get(`${setup.url}/metrics`)).body.toString();
      const theirs = (await get(`${other.url}/metrics`)).body.toString();
      expect(sample(mine, 'registry_mirror_http_requests_total', { route: 'base', status: '200' })).toBe(1);
      expect(sample(theirs, 'registry_mirror_http_requests_total', { route: 'base', status: '200' })).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});
