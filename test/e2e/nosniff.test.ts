/**
 * Every answer of the mirror carries `X-Content-Type-Options: nosniff`, so a browser never
 * guesses a type for bytes served on the mirror's origin (issue 12 item 4): API answers, blob
 * bodies written straight to the socket, errors, 404s and the operational endpoints alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, head, send, type TestResponse } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type ObservedMirror, startObserved } from '../observability/observed-mirror.js';

const REPO = 'library/alpine';
const image = makeImage({ layers: [70_000], seed: 'nosniff' });
let observed: ObservedMirror;

beforeAll(async () => {
  observed = await startObserved({ logLevel: 'silent' });
  pushImage(observed.fake, REPO, 'latest', image);
});
afterAll(() => observed?.close());

describe('X-Content-Type-Options: nosniff', () => {
  it('is on every kind of answer', async () => {
    const layer = image.layers[0]!.digest;
    const base = observed.url;
    const answers: Array<[string, Promise<TestResponse>]> = [
      ['/v2/', get(`${base}/v2/`)],
      ['manifest GET', get(`${base}/v2/${REPO}/manifests/latest`, { accept: image.manifest.mediaType })],
      ['manifest HEAD', head(`${base}/v2/${REPO}/manifests/latest`, { accept: image.manifest.mediaType })],
      ['blob GET (upstream)', get(`${base}/v2/${REPO}/blobs/${layer}`)],
      ['tags/list', get(`${base}/v2/${REPO}/tags/list`)],
      ['unknown manifest', get(`${base}/v2/${REPO}/manifests/nope`)],
      ['PUT', send(`${base}/v2/${REPO}/manifests/latest`, { method: 'PUT' })],
      ['bad name', get(`${base}/v2/UPPER/manifests/latest`)],
      ['no route', get(`${base}/nowhere`)],
      ['/healthz', get(`${base}/healthz`)],
      ['/metrics', get(`${base}/metrics`)],
      ['status page', get(`${base}/`)],
    ];
    for (const [label, pending] of answers) expect((await pending).headers['x-content-type-options'], label).toBe('nosniff');
    // Once cached, the blob body goes out straight to the socket (sendfile or a copy).
    const cached = await get(`${base}/v2/${REPO}/blobs/${layer}`);
    expect(cached.status).toBe(200);
    expect(cached.headers['x-content-type-options']).toBe('nosniff');
  });
});
