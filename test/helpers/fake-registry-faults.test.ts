import { afterEach, describe, expect, it } from 'vitest';
import { type FakeRegistry, type FakeRegistryOptions, startFakeRegistry } from './fake-registry.js';
import { get, getChunks, head, sha256, waitFor } from './http.js';
import { makeImage, pushImage, type TestBlob } from './test-images.js';

let registry: FakeRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

async function startWithLayer(options: FakeRegistryOptions = {}, size = 4096): Promise<{ upstream: FakeRegistry; layer: TestBlob; blobUrl: string }> {
  registry = await startFakeRegistry(options);
  const image = makeImage({ layers: [size], seed: 'faults' });
  pushImage(registry, 'app', 'latest', image);
  const layer = image.layers[0]!;
  return { upstream: registry, layer, blobUrl: `${registry.url}/v2/app/blobs/${layer.digest}` };
}

describe('fake registry faults', () => {
  it('answers a status fault with Retry-After, N times, then clears', async () => {
    const { upstream, blobUrl } = await startWithLayer();
    upstream.setFault('blob', { status: 429, retryAfter: '2', times: 2 });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const limited = await get(blobUrl);
      expect(limited.status).toBe(429);
      expect(limited.headers['retry-after']).toBe('2');
      expect(JSON.parse(limited.body.toString()).errors[0].code).toBe('TOOMANYREQUESTS');
    }
    expect((await get(blobUrl)).status).toBe(200);
    expect(upstream.count({ pathIncludes: '/blobs/', status: 429 })).toBe(2);
  });

  it('applies a specific fault over "all", and "all" to every kind including the token server', async () => {
    const { upstream, blobUrl } = await startWithLayer();
    upstream.setFault('all', { status: 503 });
    upstream.setFault('manifest', { status: 500 });
    expect((await get(`${upstream.url}/v2/app/manifests/latest`)).status).toBe(500);
    expect((await get(blobUrl)).status).toBe(503);
    expect((await get(`${upstream.url}/v2/`)).status).toBe(503);
    expect((await get(`${upstream.tokenUrl}?scope=repository:app:pull`)).status).toBe(503);
    upstream.setFault('all', null);
    upstream.setFault('manifest', null);
    expect((await get(blobUrl)).status).toBe(200);
  });

  it('truncate: full Content-Length, half the bytes, then the connection ends', async () => {
    const { upstream, layer, blobUrl } = await startWithLayer();
    upstream.setFault('blob', { mode: 'truncate', times: 1 });
    const result = await getChunks(blobUrl);
    expect(result.status).toBe(200);
    expect(result.error).toBeDefined();
    expect(Buffer.concat(result.chunks).equals(layer.bytes.subarray(0, layer.size / 2))).toBe(true);
    expect(sha256((await get(blobUrl)).body)).toBe(layer.digest);
  });

  it('corrupt: right length, one byte flipped in the middle', async () => {
    const { upstream, layer, blobUrl } = await startWithLayer();
    upstream.setFault('blob', { mode: 'corrupt' });
    const response = await get(blobUrl);
    expect(response.body.length).toBe(layer.size);
    expect(sha256(response.body)).not.toBe(layer.digest);
    const differing = [...response.body].flatMap((byte, index) => (byte === layer.bytes[index] ? [] : [index]));
    expect(differing).toEqual([layer.size / 2]);
  });

  it('reset: the body read fails; a HEAD gets no answer at all', async () => {
    const { upstream, blobUrl } = await startWithLayer();
    upstream.setFault('blob', { mode: 'reset', times: 2 });
    await expect(get(blobUrl)).rejects.toThrow();
    await expect(head(blobUrl)).rejects.toThrow();
    expect(upstream.requests.map((r) => r.status)).toEqual([200, 0]);
  });

  it('hang: headers then silence until the client gives up', async () => {
    const { upstream, blobUrl } = await startWithLayer();
    upstream.setFault('manifest', { mode: 'hang' });
    await expect(get(`${upstream.url}/v2/app/manifests/latest`, {}, { bodyTimeoutMs: 200 })).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
    await expect(head(`${upstream.url}/v2/app/manifests/latest`, {}, { headersTimeoutMs: 200 })).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(upstream.requests.map((r) => r.status)).toEqual([200, 0]);
    expect((await get(blobUrl)).status).toBe(200);
  });

  it('slow: the body arrives intact in small throttled chunks; HEAD does not use up the fault', async () => {
    const { upstream, layer, blobUrl } = await startWithLayer({}, 4096);
    upstream.setFault('blob', { mode: 'slow', bytesPerSecond: 10_240, times: 1 });
    expect((await head(blobUrl)).status).toBe(200);
    const result = await getChunks(blobUrl);
    expect(result.error).toBeUndefined();
    expect(Buffer.concat(result.chunks).equals(layer.bytes)).toBe(true);
    // 10 KiB/s in 50 ms ticks is 512-byte writes, so the body cannot arrive in one piece.
    expect(result.chunks.length).toBeGreaterThan(1);
  });

  it('applies blob faults on the CDN when redirecting, never to the 307', async () => {
    const { upstream, layer, blobUrl } = await startWithLayer({ redirectBlobsToCdn: true });
    upstream.setFault('blob', { mode: 'corrupt', times: 1 });
    const redirect = await get(blobUrl);
    expect(redirect.status).toBe(307);
    const corrupted = await get(redirect.headers.location as string);
    expect(sha256(corrupted.body)).not.toBe(layer.digest);
    expect(sha256((await get(redirect.headers.location as string)).body)).toBe(layer.digest);
  });

  it('close() ends hanging responses', async () => {
    const { upstream, blobUrl } = await startWithLayer();
    upstream.setFault('blob', { mode: 'hang' });
    const pending = get(blobUrl).catch((error: unknown) => error);
    await waitFor(() => upstream.count({ status: 200 }) === 1, 2_000, 'the hanging response head');
    await upstream.close();
    registry = undefined;
    expect(await pending).toBeInstanceOf(Error);
  });
});
