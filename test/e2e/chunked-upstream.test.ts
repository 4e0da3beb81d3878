/**
 * Issue 12 item 1: no upstream answer may take the process down. An upstream that answers a
 * blob GET with 200 and `Transfer-Encoding: chunked` (no Content-Length), as some registry
 * front-ends, proxies and CDNs do, is fetched, verified by digest and served; every early exit
 * consumes or destroys the upstream body with its error handled. An unhandled 'error' event
 * would surface here as an uncaught exception within the test's window.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { get, head, sha256 } from '../helpers/http.js';
import { makeImage, pushImage, type TestBlob } from '../helpers/test-images.js';
import { blobGets, deliveredExactly, type E2eSetup, startE2e, streamGet } from './e2e-fixture.js';

const REPO = 'library/chunked';

let e2e: E2eSetup | undefined;
let uncaught: unknown[] = [];
const record = (error: unknown) => void uncaught.push(error);

beforeEach(() => {
  uncaught = [];
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
});
afterEach(async () => {
  process.off('uncaughtException', record);
  process.off('unhandledRejection', record);
  await e2e?.close();
  e2e = undefined;
});

async function startWithLayer(size: number, seed: string): Promise<{ setup: E2eSetup; layer: TestBlob; url: string }> {
  const setup = await startE2e();
  e2e = setup;
  const image = makeImage({ layers: [size], seed });
  pushImage(setup.fake, REPO, 'v1', image);
  const layer = image.layers[0]!;
  return { setup, layer, url: setup.url(`/v2/${REPO}/blobs/${layer.digest}`) };
}

/** Long enough for an undici body destroyed without a listener to emit its 'error'. */
async function processSurvives(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  expect(uncaught).toEqual([]);
}

describe('an upstream that sends blobs without Content-Length', () => {
  it('fetches, verifies and serves the blob to every client, once from the upstream, then from the cache', async () => {
    const { setup, layer, url } = await startWithLayer(8 * 1024 * 1024, "chunked-ok");
    setup.fake.setFault('blob', { chunked: true, times: 1 });
    const responses = await Promise.all(Array.from({ length: 4 }, () => streamGet(url)));
    await processSurvives();
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200]);
    for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
    const cached = await get(url);
    expect(cached.status).toBe(200);
    expect(cached.headers['content-length']).toBe(String(layer.size));
    expect(sha256(cached.body)).toBe(layer.digest);
    expect((await head(url)).headers['content-length']).toBe(String(layer.size));
    expect(blobGets(setup.fake, layer.digest)).toBe(1);
  });

  it('cuts a chunked body that fails its digest check short, keeps nothing, and fetches anew next time', async () => {
    const { setup, layer, url } = await startWithLayer(300_000, 'chunked-corrupt');
    setup.fake.setFault('blob', { chunked: true, mode: 'corrupt', times: 1 });
    const bad = await streamGet(url);
    expect(deliveredExactly(bad, layer.bytes)).toBe(false);
    expect(bad.status !== 200 || bad.error !== undefined).toBe(true);
    expect(bad.body.length).toBeLessThan(layer.size);
    const good = await streamGet(url);
    expect(deliveredExactly(good, layer.bytes)).toBe(true);
    expect(blobGets(setup.fake, layer.digest)).toBe(2);
    await processSurvives();
  });

  it('a chunked body that breaks off mid-way fails its clients, and the process lives on', async () => {
    const { setup, layer, url } = await startWithLayer(300_000, 'chunked-truncated');
    setup.fake.setFault('blob', { chunked: true, mode: 'truncate', times: 1 });
    const bad = await streamGet(url);
    expect(deliveredExactly(bad, layer.bytes)).toBe(false);
    await processSurvives();
    expect(deliveredExactly(await streamGet(url), layer.bytes)).toBe(true);
  });
});
