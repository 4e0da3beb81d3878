/**
 * accel.redirectPrefix (http/accel-redirect.ts), without nginx: a cached blob GET answers with
 * the blob's headers, X-Accel-Redirect naming the file under <cache.dir>/blobs/ and no body;
 * misses, joins, HEADs and manifests are answered as without accel. Whether nginx then serves
 * the right bytes is test/interop/nginx-accel.test.ts.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { get, head, sha256 } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { blobGets, cachedBlobPath, type E2eSetup, startE2e } from './e2e-fixture.js';

const REPO = 'library/alpine';
const PREFIX = '/_registry_mirror_blobs/';
/** What deploy/nginx/registry-mirror.conf adds to every request it proxies. */
const FROM_NGINX = { 'x-registry-mirror-accel-prefix': PREFIX };
const image = makeImage({ layers: [70_000, 5_000], seed: 'accel' });

let e2e: E2eSetup;

beforeAll(async () => {
  e2e = await startE2e({ config: { accel: { redirectPrefix: PREFIX } } });
  pushImage(e2e.fake, REPO, 'v1', image);
});

afterAll(async () => {
  await e2e?.close();
});

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

/** node:http, reading whatever body arrives until the server closes (Content-Length is not honoured here). */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, timeout: 10_000 }, (response) => {
      let bodyBytes = 0;
      const done = () => resolve({ status: response.statusCode ?? 0, headers: response.headers, bodyBytes });
      response.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
      response.once('end', done);
      response.once('aborted', done);
      response.once('error', done);
    });
    req.once('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.once('error', reject);
    req.end();
  });
}

describe('accel.redirectPrefix', () => {
  it('a cache miss is streamed with its bytes as usual', async () => {
    const layer = image.layers[0]!;
    const response = await get(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), FROM_NGINX);
    expect(response.status).toBe(200);
    expect(response.headers['x-accel-redirect']).toBeUndefined();
    expect(sha256(response.body)).toBe(layer.digest);
    expect(blobGets(e2e.fake, layer.digest)).toBe(1);
    await fillsSettled(e2e.mirror);
  });

  it('a cache hit answers X-Accel-Redirect to the file under blobs/, the blob headers and no body', async () => {
    const layer = image.layers[0]!;
    const hex = layer.digest.slice('sha256:'.length);
    const answer = await rawGet(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), FROM_NGINX);
    expect(answer.status).toBe(200);
    expect(answer.bodyBytes).toBe(0);
    expect(answer.headers['x-accel-redirect']).toBe(`${PREFIX}sha256/${hex.slice(0, 2)}/${hex}`);
    expect(answer.headers['docker-content-digest']).toBe(layer.digest);
    expect(answer.headers['content-type']).toBe('application/octet-stream');
    // No body, and said so: nginx keeps its upstream connection; the length it sends comes from the file.
    expect(answer.headers['content-length']).toBe('0');
    expect(answer.headers.etag).toBe(`"${layer.digest}"`);
    expect(answer.headers['accept-ranges']).toBe('bytes');
    expect(answer.headers['docker-distribution-api-version']).toBe('registry/2.0');
    expect(answer.headers.connection).toBe('keep-alive');
    // The redirect names exactly the cached file, inside the blobs directory.
    const target = path.join(e2e.mirror.cacheDir, 'blobs', String(answer.headers['x-accel-redirect']).slice(PREFIX.length));
    expect(target).toBe(cachedBlobPath(e2e.mirror, layer.digest));
    expect(path.relative(path.join(e2e.mirror.cacheDir, 'blobs'), target).startsWith('..')).toBe(false);
    expect(existsSync(target)).toBe(true);
    expect(blobGets(e2e.fake, layer.digest)).toBe(1);
  });

  it('leaves a Range request on a cache hit to nginx: the full-blob headers, no Content-Range', async () => {
    const layer = image.layers[0]!;
    const answer = await rawGet(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), { ...FROM_NGINX, range: 'bytes=10-19' });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-accel-redirect']).toMatch(new RegExp(`^${PREFIX}sha256/`));
    expect(answer.headers['content-range']).toBeUndefined();
    expect(answer.headers['content-length']).toBe('0');
  });

  it('a request that did not come through nginx (no header, or another prefix) gets the bytes from the mirror', async () => {
    const layer = image.layers[0]!;
    const elsewhere: Array<Record<string, string>> = [{}, { 'x-registry-mirror-accel-prefix': '/other/' }];
    for (const headers of elsewhere) {
      const response = await get(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), headers);
      expect(response.status).toBe(200);
      expect(response.headers['x-accel-redirect']).toBeUndefined();
      expect(sha256(response.body)).toBe(layer.digest);
    }
    const ranged = await get(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), { range: 'bytes=10-19' });
    expect(ranged.status).toBe(206);
    expect(ranged.body.length).toBe(10);
    expect(blobGets(e2e.fake, layer.digest)).toBe(1);
  });

  it('an eviction right after the answer leaves the file for nginx to open (the blob stays pinned)', async () => {
    const layer = image.layers[1]!;
    await get(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`));
    await fillsSettled(e2e.mirror);
    const answer = await rawGet(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), FROM_NGINX);
    expect(answer.headers['x-accel-redirect']).toBeDefined();
    await e2e.mirror.mirror.budget.evictBytes(Number.MAX_SAFE_INTEGER);
    await e2e.mirror.mirror.budget.idle();
    expect(e2e.mirror.mirror.budget.has(layer.digest)).toBe(false);
    expect(existsSync(cachedBlobPath(e2e.mirror, layer.digest))).toBe(true);
  });

  it('HEAD is answered from the cache as usual, with no redirect', async () => {
    const layer = image.layers[0]!;
    const response = await head(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`), FROM_NGINX);
    expect(response.status).toBe(200);
    expect(response.headers['x-accel-redirect']).toBeUndefined();
    expect(response.headers['content-length']).toBe(String(layer.size));
    expect(response.headers['docker-content-digest']).toBe(layer.digest);
  });

  it('manifests are served by the mirror itself', async () => {
    const response = await get(e2e.url(`/v2/${REPO}/manifests/v1`), { ...FROM_NGINX, accept: image.manifest.mediaType });
    expect(response.status).toBe(200);
    expect(response.headers['x-accel-redirect']).toBeUndefined();
    expect(sha256(response.body)).toBe(image.manifest.digest);
  });

  it('an unknown or malformed digest never produces a redirect', async () => {
    for (const digest of ['sha256:../../../../etc/passwd', `sha256:${'0'.repeat(63)}/`, 'sha256:%2e%2e%2f%2e%2e']) {
      const answer = await rawGet(e2e.url(`/v2/${REPO}/blobs/${digest}`), FROM_NGINX);
      expect(answer.status, digest).toBeGreaterThanOrEqual(400);
      expect(answer.headers['x-accel-redirect'], digest).toBeUndefined();
    }
  });
});

describe('accel.redirectPrefix validation', () => {
  const parse = (redirectPrefix: unknown) => parseMirrorConfig({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' } }, accel: { redirectPrefix } });

  it('accepts an absolute prefix ending in /', () => {
    expect(parse('/_registry_mirror_blobs/').accel).toEqual({ redirectPrefix: '/_registry_mirror_blobs/' });
    expect(parse('/internal/blobs/').accel).toEqual({ redirectPrefix: '/internal/blobs/' });
  });

  it.each(['_blobs/', '/_blobs', '/', '/a/../b/', '/a b/', 'http://x/blobs/', '//blobs/', 7])('rejects %j, naming the key', (value) => {
    expect(() => parse(value)).toThrow(/accel\.redirectPrefix/);
  });

  it('is off unless configured', () => {
    expect(parseMirrorConfig({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' } } }).accel).toBeUndefined();
  });
});
