/**
 * An anonymous client's first manifest of a repository whose verdict is not known yet: the
 * anonymous probe and the credentialed fetch run side by side (pull-through/guarded-registry.ts),
 * so a cold image waits for the slower of the two, not for both (issue 16: the manifest of a cold
 * pull is on the path of every request after it). Nothing reaches a refused client, and the
 * image's blobs are prefetched only once the client is allowed: an anonymous client asking for a
 * private image costs the upstream that one manifest, never the image.
 * Upstream: bearer tokens, `testuser/` private; the mirror holds alice's credentials.
 */
import { describe, expect, it } from 'vitest';
import { get, waitFor } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { useCredentialedMirror } from './security-fixture.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';
/** Each manifest answer (HEAD and GET) waits this long: long enough to tell side by side from one after the other. */
const MANIFEST_DELAY_MS = 150;

const start = useCredentialedMirror();

describe("an anonymous client's first manifest of a repository", () => {
  it('is fetched while the anonymous probe runs, and served once the probe allowed it', async () => {
    const { upstream, mirror } = await start({ fetch: { prefetch: true } });
    const image = makeImage({ layers: [4000], seed: 'probe-beside-fetch' });
    pushImage(upstream, PUBLIC, 'v1', image);
    upstream.setFault('manifest', { delayMs: MANIFEST_DELAY_MS });
    const response = await get(`${mirror.url}/v2/${PUBLIC}/manifests/v1`, { accept: image.manifest.mediaType });
    expect(response.status).toBe(200);
    expect(response.body.equals(image.manifest.bytes)).toBe(true);
    const manifests = upstream.requests.filter((record) => record.server === 'registry' && record.path === `/v2/${PUBLIC}/manifests/v1` && record.status === 200);
    const probe = manifests.find((record) => record.method === 'HEAD');
    const fetch = manifests.find((record) => record.method === 'GET');
    expect(probe?.finishedAt).toBeDefined();
    // The fetch reached the upstream before the probe's answer had left it.
    expect(fetch!.receivedAt).toBeLessThan(probe!.finishedAt!);
    // The prefetch of the allowed image starts a moment after the response: let it finish before the cache is removed.
    const blobGets = () => upstream.requests.filter((record) => record.method === 'GET' && record.path.includes('/blobs/') && record.finishedAt !== undefined);
    await waitFor(() => blobGets().length === 2, 5000, 'the prefetch of the config and the layer');
    await fillsSettled(mirror);
  });

  it('refused: the client gets NAME_UNKNOWN, and the private image is not prefetched', async () => {
    const { upstream, mirror } = await start({ fetch: { prefetch: true } });
    const image = makeImage({ layers: [4000, 6000], seed: 'probe-beside-fetch-private' });
    pushImage(upstream, PRIVATE, 'v1', image);
    upstream.setFault('manifest', { delayMs: MANIFEST_DELAY_MS });
    const response = await get(`${mirror.url}/v2/${PRIVATE}/manifests/v1`, { accept: image.manifest.mediaType });
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body.toString()).errors[0].code).toBe('NAME_UNKNOWN');
    // The fetch beside the probe may still land; a prefetch would start right after it.
    await new Promise((resolve) => setTimeout(resolve, 2 * MANIFEST_DELAY_MS + 200));
    await fillsSettled(mirror);
    expect(upstream.count({ method: 'GET', pathIncludes: '/blobs/' })).toBe(0);
    const manifestsServed = upstream.requests.filter((record) => record.method === 'GET' && record.path.includes('/manifests/') && record.status === 200);
    expect(manifestsServed.length).toBeLessThanOrEqual(1);
  });
});
