/**
 * Upstream trouble (issue 2): while the upstream answers 503, 429 or resets connections, what is
 * cached keeps being served (tags stale, blobs as they are), what is not cached fails with the
 * upstream's condition (503 / 429 with Retry-After), never with a 404 that would make clients
 * believe the image is gone. A blob whose bytes are wrong or short is never delivered as a clean
 * body, never cached, and fetched afresh next time.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Fault } from '../helpers/fake-registry.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { blobGets, deliveredExactly, errorCode, type E2eSetup, isBlobCached, startE2e, streamGet } from './e2e-fixture.js';

const REPO = 'library/redis';

let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

const outages: Array<[string, Fault, number, string]> = [
  ['503', { status: 503 }, 503, 'UNAVAILABLE'],
  ['429 with Retry-After', { status: 429, retryAfter: '7' }, 429, 'TOOMANYREQUESTS'],
  ['connection resets', { mode: 'reset' }, 503, 'UNAVAILABLE'],
];

for (const [label, fault, status, code] of outages) {
  describe(`upstream answering ${label}`, () => {
    it('a cached tag (ttl 0) is served stale with the cached bytes, and cached blobs are served', async () => {
      e2e = await startE2e({ config: { tags: { ttlSeconds: 0 } } });
      const image = makeImage({ layers: [50_000], seed: `stale-${label}` });
      pushImage(e2e.fake, REPO, 'latest', image);
      expect((await get(e2e.url(`/v2/${REPO}/manifests/latest`))).status).toBe(200);
      expect((await get(e2e.url(`/v2/${REPO}/blobs/${image.layers[0]!.digest}`))).status).toBe(200);
      await fillsSettled(e2e.mirror);

      e2e.fake.setFault('all', fault);
      e2e.fake.resetCounts();
      const manifest = await get(e2e.url(`/v2/${REPO}/manifests/latest`));
      expect(manifest.status).toBe(200);
      expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
      expect(manifest.headers['docker-content-digest']).toBe(image.manifest.digest);
      // It did ask (ttl 0), and the upstream failed.
      expect(e2e.fake.count({ server: 'registry', method: 'HEAD', pathIncludes: '/manifests/latest' })).toBe(1);

      const blob = await get(e2e.url(`/v2/${REPO}/blobs/${image.layers[0]!.digest}`));
      expect(blob.status).toBe(200);
      expect(sha256(blob.body)).toBe(image.layers[0]!.digest);
    });

    it(`an uncached tag answers ${status} ${code}, never 404`, async () => {
      e2e = await startE2e();
      const warm = makeImage({ layers: [10], seed: `warm-${label}` });
      const cold = makeImage({ layers: [10], seed: `cold-${label}` });
      pushImage(e2e.fake, REPO, 'warm', warm);
      pushImage(e2e.fake, REPO, 'cold', cold);
      // Holds a token already, so the fault meets the manifest request itself.
      expect((await get(e2e.url(`/v2/${REPO}/manifests/warm`))).status).toBe(200);

      e2e.fake.setFault('all', fault);
      const response = await get(e2e.url(`/v2/${REPO}/manifests/cold`));
      expect(response.status).toBe(status);
      expect(errorCode(response)).toBe(code);
      if (fault.status === 429) expect(response.headers['retry-after']).toBe('7');
      const layer = cold.layers[0]!;
      const blob = await streamGet(e2e.url(`/v2/${REPO}/blobs/${layer.digest}`));
      expect(deliveredExactly(blob, layer.bytes)).toBe(false);
      expect(blob.status).not.toBe(404);
      if (fault.status !== undefined) {
        // A status fault comes before any byte, so the client gets the upstream's condition.
        expect(blob.status).toBe(status);
        expect(JSON.parse(blob.body.toString()).errors[0].code).toBe(code);
      }
    });

    it(`an uncached tag answers ${status} also when the token server is the one failing`, async () => {
      e2e = await startE2e();
      pushImage(e2e.fake, REPO, 'cold', makeImage({ layers: [10], seed: `token-${label}` }));
      e2e.fake.setFault('token', fault);
      const response = await get(e2e.url(`/v2/${REPO}/manifests/cold`));
      expect(response.status).toBe(status);
      expect(errorCode(response)).toBe(code);
    });
  });
}

describe('content the upstream does not have', () => {
  it('an unknown manifest answers 404 MANIFEST_UNKNOWN', async () => {
    e2e = await startE2e();
    pushImage(e2e.fake, REPO, 'latest', makeImage({ layers: [10], seed: 'unknown' }));
    const byTag = await get(e2e.url(`/v2/${REPO}/manifests/nope`));
    expect(byTag.status).toBe(404);
    expect(errorCode(byTag)).toBe('MANIFEST_UNKNOWN');
    const byDigest = await get(e2e.url(`/v2/${REPO}/manifests/sha256:${'0'.repeat(64)}`));
    expect(byDigest.status).toBe(404);
    expect(errorCode(byDigest)).toBe('MANIFEST_UNKNOWN');
  });

  it('an unknown blob answers 404 BLOB_UNKNOWN', async () => {
    e2e = await startE2e();
    pushImage(e2e.fake, REPO, 'latest', makeImage({ layers: [10], seed: 'unknown-blob' }));
    const response = await get(e2e.url(`/v2/${REPO}/blobs/sha256:${'1'.repeat(64)}`));
    expect(response.status).toBe(404);
    expect(errorCode(response)).toBe('BLOB_UNKNOWN');
  });
});

describe('bad blob bytes from the upstream', () => {
  const modes: Array<Fault['mode']> = ['corrupt', 'truncate', 'reset'];

  for (const mode of modes) {
    for (const redirectBlobsToCdn of [true, false]) {
      const where = redirectBlobsToCdn ? 'CDN' : 'registry';
      it(`${mode} at the ${where}: no clean body, nothing cached, refetched right once the fault clears`, async () => {
        e2e = await startE2e({ fake: { redirectBlobsToCdn } });
        const image = makeImage({ layers: [1_500_000], seed: `bad-${mode}-${where}` });
        pushImage(e2e.fake, REPO, 'latest', image);
        const layer = image.layers[0]!;
        const url = e2e.url(`/v2/${REPO}/blobs/${layer.digest}`);

        e2e.fake.setFault('blob', { mode, times: 1 });
        const broken = await streamGet(url);
        expect(deliveredExactly(broken, layer.bytes)).toBe(false);
        if (broken.status === 200) expect(broken.error !== undefined || broken.body.length < layer.size).toBe(true);
        await waitFor(() => e2e!.mirror.mirror.downloads.list().length === 0, 10_000, 'the failed download to settle');
        expect(isBlobCached(e2e.mirror, layer.digest)).toBe(false);
        expect(blobGets(e2e.fake, layer.digest)).toBe(1);

        // The fault was used up: the next request goes upstream again and gets the right bytes.
        const fixed = await streamGet(url);
        expect(deliveredExactly(fixed, layer.bytes)).toBe(true);
        expect(fixed.digest).toBe(layer.digest);
        expect(blobGets(e2e.fake, layer.digest)).toBe(2);
        await waitFor(() => isBlobCached(e2e!.mirror, layer.digest), 10_000, 'the blob to be cached');
      });
    }
  }
});
