/**
 * A blob miss asks the upstream's token server for its token as soon as it knows it will fetch,
 * while it still waits for its flight, the store check and an upstream slot (issue 16: the token's
 * round trip overlaps that coordination instead of following it before the first byte), and the
 * fetch then uses that same token: one token request, not two.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { blobGets, deliveredExactly, type E2eSetup, startE2e, streamGet } from './e2e-fixture.js';

const MiB = 1024 * 1024;
let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

function tokenRequestsFor(setup: E2eSetup, repository: string): number {
  return setup.fake.requests.filter((record) => record.server === 'token' && new URLSearchParams(record.query).get('scope') === `repository:${repository}:pull`).length;
}

describe('the token of a blob miss', () => {
  it('is asked for while the fetch waits for an upstream slot, and that one token serves the fetch', async () => {
    const setup = await startE2e({ config: { fetch: { maxConcurrent: 1 } } });
    e2e = setup;
    const slowImage = makeImage({ layers: [MiB], seed: 'token-early-slow' });
    const queuedImage = makeImage({ layers: [64 * 1024], seed: 'token-early-queued' });
    pushImage(setup.fake, 'library/slow', 'latest', slowImage);
    pushImage(setup.fake, 'library/queued', 'latest', queuedImage);
    // The upstream's challenge is known from here on, as on any mirror in service.
    expect((await get(setup.url('/v2/library/slow/manifests/latest'))).status).toBe(200);

    // A slow fill (about 2 s) holds the only upstream slot.
    setup.fake.setFault('blob', { mode: 'slow', bytesPerSecond: MiB / 2 });
    const slowLayer = slowImage.layers[0]!;
    const holder = streamGet(setup.url(`/v2/library/slow/blobs/${slowLayer.digest}`));
    await waitFor(() => setup.mirror.mirror.downloads.list().length === 1, 10_000, 'the slow fill to start');

    const queuedLayer = queuedImage.layers[0]!;
    const queued = streamGet(setup.url(`/v2/library/queued/blobs/${queuedLayer.digest}`));
    await waitFor(() => setup.mirror.mirror.limiter.stats('docker.io').queued === 1, 10_000, 'the second fetch to queue');
    // Still queued (the upstream has not seen its blob GET), and its token is already asked for.
    await waitFor(() => tokenRequestsFor(setup, 'library/queued') === 1, 5_000, 'the queued fetch to ask for its token');
    expect(blobGets(setup.fake, queuedLayer.digest)).toBe(0);
    expect(setup.mirror.mirror.limiter.stats('docker.io').queued).toBe(1);

    setup.fake.setFault('blob', null);
    expect(deliveredExactly(await holder, slowLayer.bytes)).toBe(true);
    expect(deliveredExactly(await queued, queuedLayer.bytes)).toBe(true);
    expect(tokenRequestsFor(setup, 'library/queued')).toBe(1);
    expect(blobGets(setup.fake, queuedLayer.digest)).toBe(1);
  });
});
