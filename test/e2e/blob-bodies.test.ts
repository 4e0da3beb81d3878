/**
 * How cache hits leave the mirror (issue 8): with sendfile(2) when the native addon is built,
 * by copying through user space with `sendfile: false`; the same bytes, headers and ranges either
 * way, and /api/status says which path is in use.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sendfileAddon } from '../../src/http/sendfile-addon.js';
import { get, sha256 } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, startE2e, upstreamTotal } from './e2e-fixture.js';

const REPO = 'library/busybox';

let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

describe.each([
  { sendfile: true, expected: sendfileAddon ? 'sendfile' : 'copy' },
  { sendfile: false, expected: 'copy' },
])('cache hits with config sendfile: $sendfile', ({ sendfile, expected }) => {
  it(`are sent by ${expected}: whole, by range, with the registry headers, and nothing upstream`, async () => {
    e2e = await startE2e({ config: { sendfile } });
    const image = makeImage({ layers: [5 * 1024 * 1024 + 3], seed: `bodies-${sendfile}` });
    pushImage(e2e.fake, REPO, 'v1', image);
    const layer = image.layers[0]!;
    const url = e2e.url(`/v2/${REPO}/blobs/${layer.digest}`);
    expect(sha256((await get(url)).body)).toBe(layer.digest);
    e2e.fake.resetCounts();

    const whole = await get(url);
    expect(whole.status).toBe(200);
    expect(sha256(whole.body)).toBe(layer.digest);
    expect(whole.headers['content-length']).toBe(String(layer.bytes.length));
    expect(whole.headers['docker-content-digest']).toBe(layer.digest);
    expect(whole.headers['docker-distribution-api-version']).toBe('registry/2.0');

    const ranged = await get(url, { Range: 'bytes=4097-5000000' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 4097-5000000/${layer.bytes.length}`);
    expect(ranged.body.equals(layer.bytes.subarray(4097, 5_000_001))).toBe(true);
    expect(upstreamTotal(e2e.fake)).toBe(0);

    const status = JSON.parse((await get(e2e.url('/api/status'))).body.toString());
    expect(status.blobBodies.method).toBe(expected);
  });
});
