import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth, get, head, waitFor } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { pullImage, startObserved, type ObservedMirror } from './observed-mirror.js';

const USER = 'mirror-bot';
const PASSWORD = 'hunter2-Sup3rSecret-pw';

interface Line {
  level: number;
  msg: string;
  requestId?: string;
  method?: string;
  path?: string;
  route?: string;
  status?: number;
  bytes?: number;
  cache?: string;
  upstreamMs?: number;
  durationMs?: number;
}

function requestLines(setup: ObservedMirror): Line[] {
  return setup.logLines().map((line) => JSON.parse(line) as Line).filter((line) => line.msg === 'request');
}

describe('access log', () => {
  let setup: ObservedMirror | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });

  it('writes only JSON lines, and neither the upstream password nor any token appears in them', async () => {
    setup = await startObserved({
      fake: { auth: 'bearer', users: { [USER]: PASSWORD } },
      upstream: { username: USER, password: PASSWORD },
      logLevel: 'trace',
    });
    const image = makeImage({ layers: [30_000, 2_000], seed: 'private' });
    pushImage(setup.fake, 'library/app', 'v1', image);
    await pullImage(setup.url, 'library/app', 'v1', image); // cold
    await fillsSettled(setup);
    await pullImage(setup.url, 'library/app', 'v1', image); // warm
    // Failures log too: an unknown tag, an upstream outage, a revoked token.
    expect((await get(`${setup.url}/v2/library/app/manifests/missing`)).status).toBe(404);
    setup.fake.setFault('manifest', { status: 503, times: 1 });
    expect((await get(`${setup.url}/v2/library/app/manifests/other`)).status).toBe(503);
    setup.fake.revokeTokens();
    expect((await get(`${setup.url}/v2/library/app/manifests/missing-too`)).status).toBe(404);

    // The mirror did use its credentials (Basic to the token server).
    expect(setup.fake.requests.some((request) => request.server === 'token' && request.headers.authorization === basicAuth(USER, PASSWORD))).toBe(true);
    const lines = setup.logLines();
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    const tokens = new Set<string>();
    for (const request of setup.fake.requests) {
      const authorization = request.headers.authorization;
      if (authorization?.startsWith('Bearer ')) tokens.add(authorization.slice('Bearer '.length));
    }
    expect(tokens.size).toBeGreaterThan(0);
    const all = lines.join('\n');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain(basicAuth(USER, PASSWORD).slice('Basic '.length));
    for (const token of tokens) expect(all).not.toContain(token);
  });

  it('has one line per request with request id, method, path, status, bytes, cache result and upstream time', async () => {
    setup = await startObserved({ logLevel: 'info' });
    const image = makeImage({ layers: [50_000], seed: 'fields' });
    pushImage(setup.fake, 'library/nginx', '1.27', image);
    const layer = image.layers[0]!;
    const blobUrl = `${setup.url}/v2/library/nginx/blobs/${layer.digest}`;

    const cold = await get(`${setup.url}/v2/library/nginx/manifests/1.27`, { 'x-request-id': 'req-cold-1' });
    expect(cold.headers['x-request-id']).toBe('req-cold-1');
    const coldBlob = await get(blobUrl, { 'x-request-id': 'req-blob-1' });
    expect(coldBlob.headers['x-request-id']).toBe('req-blob-1');
    await fillsSettled(setup);
    const warmBlob = await get(blobUrl);
    expect(warmBlob.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    await head(blobUrl, { 'x-request-id': 'bad id with spaces' });
    await get(`${setup.url}/v2/library/nginx/blobs/${layer.digest}`, { range: 'bytes=0-99', 'x-request-id': 'req-range' });

    // Streamed blob lines are written when the socket response closes, just after the body.
    const deadline = Date.now() + 5000;
    while (requestLines(setup).length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const lines = requestLines(setup);
    expect(lines).toHaveLength(5);
    const byId = (id: string) => lines.find((line) => line.requestId === id)!;
    expect(byId('req-cold-1')).toMatchObject({ method: 'GET', path: '/v2/library/nginx/manifests/1.27', route: 'manifests', status: 200, bytes: image.manifest.size, cache: 'upstream' });
    expect(byId('req-cold-1').upstreamMs).toEqual(expect.any(Number));
    expect(byId('req-blob-1')).toMatchObject({ method: 'GET', route: 'blobs', status: 200, bytes: layer.size, cache: 'upstream' });
    expect(byId(warmBlob.headers['x-request-id'] as string)).toMatchObject({ status: 200, bytes: layer.size, cache: 'cache', upstreamMs: 0 });
    expect(byId('req-range')).toMatchObject({ status: 206, bytes: 100, cache: 'cache' });
    const headLine = lines.find((line) => line.method === 'HEAD')!;
    expect(headLine).toMatchObject({ status: 200, bytes: 0 });
    expect(headLine.requestId).not.toBe('bad id with spaces');
    for (const line of lines) expect(line.durationMs).toEqual(expect.any(Number));
  });

  it('charges a request the time of the upstream calls made for it, and none of the calls made meanwhile for others', async () => {
    setup = await startObserved({ logLevel: 'info' });
    const image = makeImage({ layers: [40_000, 30_000, 20_000], seed: 'charged' });
    pushImage(setup.fake, 'library/timed', 'v1', image);
    const [warm, fetched, headed] = image.layers as [typeof image.layers[0], typeof image.layers[0], typeof image.layers[0]];
    const base = `${setup.url}/v2/library/timed`;
    expect((await get(`${base}/blobs/${warm.digest}`)).status).toBe(200);
    await fillsSettled(setup);

    const UPSTREAM_DELAY_MS = 300;
    for (const kind of ['manifest', 'blob', 'tags'] as const) setup.fake.setFault(kind, { delayMs: UPSTREAM_DELAY_MS });
    const slow = Promise.all([
      get(`${base}/manifests/v1`, { 'x-request-id': 'slow-manifest' }),
      get(`${base}/blobs/${fetched.digest}`, { 'x-request-id': 'slow-blob' }),
      head(`${base}/blobs/${headed.digest}`, { 'x-request-id': 'slow-head' }),
      get(`${base}/tags/list`, { 'x-request-id': 'slow-tags' }),
    ]);
    // Served while those four wait for the upstream, in the same process.
    await new Promise((resolve) => setTimeout(resolve, UPSTREAM_DELAY_MS / 3));
    expect((await get(`${base}/blobs/${warm.digest}`, { 'x-request-id': 'warm-meanwhile' })).status).toBe(200);
    expect((await slow).map((response) => response.status)).toEqual([200, 200, 200, 200]);

    const ids = ['slow-manifest', 'slow-blob', 'slow-head', 'slow-tags', 'warm-meanwhile'];
    await waitFor(() => ids.every((id) => requestLines(setup!).some((line) => line.requestId === id)), 5_000, 'the access log lines');
    const upstreamMsOf = (id: string) => requestLines(setup!).find((line) => line.requestId === id)!.upstreamMs;
    for (const id of ids.slice(0, 4)) expect(upstreamMsOf(id), id).toBeGreaterThanOrEqual(UPSTREAM_DELAY_MS - 5);
    expect(upstreamMsOf('warm-meanwhile')).toBe(0);
  });

  it('logs a warm blob the client abandoned as aborted, with the body bytes that did go out', async () => {
    setup = await startObserved({ logLevel: 'info' });
    const image = makeImage({ layers: [24 * 1024 * 1024], seed: 'abandoned' });
    pushImage(setup.fake, 'library/nginx', 'big', image);
    const layer = image.layers[0]!;
    const blobUrl = `${setup.url}/v2/library/nginx/blobs/${layer.digest}`;
    expect((await get(blobUrl)).status).toBe(200);
    await fillsSettled(setup);

    const { port } = new URL(setup.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = 0;
    // Stop reading as soon as two MiB are in: the rest of the body must never arrive.
    socket.on('data', (chunk: Buffer) => (received += chunk.length) > 2 * 1024 * 1024 && socket.pause());
    socket.write(`GET ${new URL(blobUrl).pathname} HTTP/1.1\r\nHost: mirror\r\nX-Request-Id: req-abandoned\r\n\r\n`);
    await waitFor(() => received > 2 * 1024 * 1024, 5_000, 'two MiB of the body');
    socket.destroy();

    await waitFor(() => requestLines(setup!).some((line) => line.requestId === 'req-abandoned'), 5_000, 'the access log line');
    const line = requestLines(setup).find((entry) => entry.requestId === 'req-abandoned')! as Line & { aborted?: boolean };
    expect(line).toMatchObject({ status: 200, cache: 'cache', aborted: true });
    expect(line.bytes).toBeGreaterThanOrEqual(2 * 1024 * 1024);
    expect(line.bytes).toBeLessThan(layer.size);
  });
});
