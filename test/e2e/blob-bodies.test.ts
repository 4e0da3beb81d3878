/**
 * How blob bodies leave the mirror (issue 8): with sendfile(2) when the native addon is built,
 * cache hits and downloads still running alike; by copying or streaming through user space with
 * `sendfile: false`. The same bytes, headers and ranges either way, and /api/status says which
 * path is in use.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendfileAddon } from '../../src/http/sendfile-addon.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { serviceMissing } from '../helpers/required-services.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { blobGets, deliveredExactly, type E2eSetup, startE2e, streamGet, upstreamTotal } from './e2e-fixture.js';

const REPO = 'library/busybox';
// Without the addon the cases below test the copy path twice; in CI the addon must be there.
serviceMissing(process.platform === 'linux' && !sendfileAddon, 'the sendfile addon is not loaded: npm run build:native');

let e2e: E2eSetup | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
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

describe.each([
  { sendfile: true, bySendfile: sendfileAddon !== undefined },
  { sendfile: false, bySendfile: false },
])('a blob still downloading, with config sendfile: $sendfile', ({ sendfile, bySendfile }) => {
  it(`reaches every client as it arrives${bySendfile ? ', by sendfile' : ''}, from one upstream GET`, async () => {
    const MiB = 1024 * 1024;
    e2e = await startE2e({ config: { sendfile } });
    const image = makeImage({ layers: [4 * MiB], seed: `growing-${sendfile}` });
    pushImage(e2e.fake, REPO, 'v1', image);
    const layer = image.layers[0]!;
    const url = e2e.url(`/v2/${REPO}/blobs/${layer.digest}`);
    // The zero-copy path hands the growing file to the addon; the streaming path reads it in user space.
    const sent = sendfileAddon ? vi.spyOn(sendfileAddon, 'sendResident') : undefined;
    e2e.fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const first = streamGet(url);
    const downloading = () => e2e!.mirror.mirror.downloads.list().find((entry) => entry.digest === layer.digest);
    await waitFor(() => (downloading()?.bytesWritten ?? 0) >= MiB, 10_000, 'a quarter of the blob written');
    const joined = streamGet(url, { headers: { Range: 'bytes=1000-3999999' } });
    const [whole, part] = await Promise.all([first, joined]);
    expect(deliveredExactly(whole, layer.bytes)).toBe(true);
    expect(part.status).toBe(206);
    expect(part.body.equals(layer.bytes.subarray(1000, 4_000_000))).toBe(true);
    expect(blobGets(e2e.fake, layer.digest)).toBe(1);
    expect((sent?.mock.calls.length ?? 0) > 0).toBe(bySendfile);
  });
});
