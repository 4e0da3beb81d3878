/**
 * The warm-blob lane (src/http/warm-blob-lane.ts): a GET of a whole blob the mirror holds is
 * answered before the app, with the app's answer (status, headers, bytes, access-log line,
 * metrics), and every other request reaches the app as before. Two servers share one composed
 * mirror: one with the lane in front of a fetch handler that counts what reaches the app, one
 * with the app alone.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeMirror, type Mirror } from '../../src/compose.js';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { createMirrorHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/log.js';
import { warmBlobLane } from '../../src/http/warm-blob-lane.js';
import type { BlobAnswer, RegistryService } from '../../src/pull-through/registry-service.js';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.js';
import { get, head, send, sha256, waitFor, type TestResponse } from '../helpers/http.js';
import { fillsSettled } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startHosted } from '../hosted/hosted-fixture.js';
import { rawExchange } from '../helpers/raw-exchange.js';

const REPO = 'library/alpine';
const image = makeImage({ layers: [300_000, 5_000], seed: 'warm-blob-lane' });
const layer = image.layers[0]!;
const other = image.layers[1]!;

let fake: FakeRegistry;
let mirror: Mirror;
let laneUrl: string;
let appUrl: string;
const logChunks: string[] = [];
/** Paths (with query) that reached the app behind the lane. */
let reachedApp: string[];
let closeHarness: (() => Promise<void>) | undefined;

interface LaneHarness {
  mirror: Mirror;
  /** The lane in front of a fetch handler that records in `reachedApp` what reaches the app. */
  laneUrl: string;
  /** The app alone. */
  appUrl: string;
  reachedApp: string[];
  close(): Promise<void>;
}

/** One composed mirror in front of `upstream` (the docker.io upstream's config), served twice. */
async function startLaneHarness(upstream: FakeRegistry, credentials: Record<string, string> = {}): Promise<LaneHarness> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), 'mirror-lane-'));
  const config = parseMirrorConfig({
    listen: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    fetch: { prefetch: false },
    cache: { dir: cacheDir, maxBytes: 2 ** 30 },
    hosted: { repositories: ['team/**'], allowAnonymousPush: true },
    upstreams: { 'docker.io': { url: upstream.url, tokenRealms: [new URL(upstream.tokenUrl).host], redirectHosts: [new URL(upstream.cdnUrl).host], ...credentials } },
  });
  const sink = new Writable({ write(chunk, _encoding, done) { logChunks.push(String(chunk)); done(); } });
  const composed = await composeMirror(config, createLogger(config.log.level, sink));
  expect(composed.lane).toBeDefined();
  const calls: string[] = [];
  const countingFetch = (request: Request, env: unknown) => {
    const url = new URL(request.url);
    calls.push(url.pathname + url.search);
    return composed.app.fetch(request, env);
  };
  const servers = [
    await listen(createMirrorHttpServer(countingFetch, { defaultHost: '127.0.0.1', lane: composed.lane! }) as Server),
    await listen(createMirrorHttpServer(composed.app.fetch, { defaultHost: '127.0.0.1' }) as Server),
  ];
  const [laneAt, appAt] = servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return {
    mirror: composed, laneUrl: laneAt!, appUrl: appAt!, reachedApp: calls,
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await composed.close();
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

beforeAll(async () => {
  fake = await startFakeRegistry({ auth: 'bearer', redirectBlobsToCdn: true });
  pushImage(fake, REPO, 'latest', image);
  const harness = await startLaneHarness(fake);
  ({ mirror, laneUrl, appUrl, reachedApp } = harness);
  closeHarness = () => harness.close();
  // Cached through the app: the lane answers only what is held.
  for (const blob of [layer, other]) expect((await get(`${appUrl}/v2/${REPO}/blobs/${blob.digest}`)).status).toBe(200);
  await fillsSettled({ mirror });
});

afterAll(async () => {
  await closeHarness?.();
  await fake?.close();
});

function listen(server: Server): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/** What the app reached for `pathAndQuery` while `request` ran. */
async function appCallsDuring(request: () => Promise<TestResponse>): Promise<{ response: TestResponse; calls: string[] }> {
  const before = reachedApp.length;
  const response = await request();
  return { response, calls: reachedApp.slice(before) };
}

function withoutDate(headers: TestResponse['headers']): Record<string, unknown> {
  const { date: _date, ...rest } = headers;
  return rest;
}

function requestLines(id: string): Array<Record<string, unknown>> {
  return logChunks.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'request' && line.requestId === id);
}

async function metricValue(name: string, labels: string): Promise<number> {
  const text = (await get(`${appUrl}/metrics`)).body.toString();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('warm-blob lane', () => {
  it('answers a cached blob GET without the app, with the app\'s status, headers and bytes', async () => {
    const headers = { 'x-request-id': 'lane-same-answer' };
    const { response: viaLane, calls } = await appCallsDuring(() => get(`${laneUrl}/v2/${REPO}/blobs/${layer.digest}`, headers));
    const viaApp = await get(`${appUrl}/v2/${REPO}/blobs/${layer.digest}`, headers);
    expect(calls).toEqual([]);
    expect(viaLane.status).toBe(200);
    expect(viaLane.body.equals(layer.bytes)).toBe(true);
    expect(sha256(viaLane.body)).toBe(layer.digest);
    expect(viaLane.headers['docker-content-digest']).toBe(layer.digest);
    expect(viaLane.headers['content-length']).toBe(String(layer.bytes.length));
    expect(viaLane.headers['x-request-id']).toBe('lane-same-answer');
    expect(withoutDate(viaLane.headers)).toEqual(withoutDate(viaApp.headers));
    expect(viaApp.body.equals(viaLane.body)).toBe(true);
  });

  it('answers containerd\'s ?ns= form and a path-prefixed name too, and never asks the upstream', async () => {
    fake.resetCounts();
    for (const url of [`${laneUrl}/v2/${REPO}/blobs/${other.digest}?ns=docker.io`, `${laneUrl}/v2/docker.io/${REPO}/blobs/${other.digest}`]) {
      const { response, calls } = await appCallsDuring(() => get(url));
      expect(calls, url).toEqual([]);
      expect(response.status).toBe(200);
      expect(createHash('sha256').update(response.body).digest('hex')).toBe(other.digest.slice('sha256:'.length));
    }
    expect(fake.count()).toBe(0);
  });

  it('logs and counts its answer as the app does', async () => {
    const hitsBefore = await metricValue('registry_mirror_cache_hits_total', 'kind="blob",result="cache"');
    const requestsBefore = await metricValue('registry_mirror_http_requests_total', 'route="blobs",method="GET",status="200"');
    const bytesBefore = await metricValue('registry_mirror_served_bytes_total', 'source="cache"');
    expect((await get(`${laneUrl}/v2/${REPO}/blobs/${layer.digest}`, { 'x-request-id': 'lane-logged' })).status).toBe(200);
    expect((await get(`${appUrl}/v2/${REPO}/blobs/${layer.digest}`, { 'x-request-id': 'app-logged' })).status).toBe(200);
    const [laneLine] = requestLines('lane-logged');
    const [appLine] = requestLines('app-logged');
    expect(laneLine).toBeDefined();
    const comparable = (line: Record<string, unknown>) => {
      const { requestId: _id, durationMs: _duration, time: _time, ...rest } = line;
      return rest;
    };
    expect(comparable(laneLine!)).toEqual(comparable(appLine!));
    expect(laneLine).toMatchObject({ method: 'GET', route: 'blobs', status: 200, bytes: layer.bytes.length, cache: 'cache', upstream: 'docker.io' });
    expect(await metricValue('registry_mirror_cache_hits_total', 'kind="blob",result="cache"')).toBe(hitsBefore + 2);
    expect(await metricValue('registry_mirror_http_requests_total', 'route="blobs",method="GET",status="200"')).toBe(requestsBefore + 2);
    expect(await metricValue('registry_mirror_served_bytes_total', 'source="cache"')).toBe(bytesBefore + 2 * layer.bytes.length);
  });

  it('hands the app every request it cannot answer the same way', async () => {
    const blob = `/v2/${REPO}/blobs/${layer.digest}`;
    const uncached = image.config.digest;
    const cases: Array<[string, () => Promise<TestResponse>, number]> = [
      ['a range', () => get(`${laneUrl}${blob}`, { range: 'bytes=0-9' }), 206],
      ['If-None-Match', () => get(`${laneUrl}${blob}`, { 'if-none-match': `"${layer.digest}"` }), 304],
      ['If-Range', () => get(`${laneUrl}${blob}`, { 'if-range': '"other"', range: 'bytes=0-9' }), 200],
      ['HEAD', () => head(`${laneUrl}${blob}`), 200],
      ['a query besides ns', () => get(`${laneUrl}${blob}?ns=docker.io&x=1`), 200],
      ['ns given twice', () => get(`${laneUrl}${blob}?ns=docker.io&ns=docker.io`), 400],
      ['an encoded ns', () => get(`${laneUrl}${blob}?ns=docker%2Eio`), 200],
      ['an unknown ns', () => get(`${laneUrl}${blob}?ns=quay.io`), 404],
      ['a blob not held', () => get(`${laneUrl}/v2/${REPO}/blobs/${uncached}`), 200],
      ['a bad digest', () => get(`${laneUrl}/v2/${REPO}/blobs/sha256:abc`), 400],
      ['a bad name', () => get(`${laneUrl}/v2/UPPER/blobs/${layer.digest}`), 400],
      ['a hosted name', () => get(`${laneUrl}/v2/team/app/blobs/${layer.digest}`), 404],
      ['a manifest', () => get(`${laneUrl}/v2/${REPO}/manifests/latest`, { accept: image.manifest.mediaType }), 200],
      ['a DELETE', () => send(`${laneUrl}${blob}`, { method: 'DELETE' }), 405],
    ];
    for (const [label, request, status] of cases) {
      const { response, calls } = await appCallsDuring(request);
      expect(response.status, label).toBe(status);
      expect(calls, label).toHaveLength(1);
    }
  });

  it('hands the app a request whose Host the adapter refuses, which answers it 400', async () => {
    const before = reachedApp.length;
    const answer = await rawExchange(laneUrl, `GET /v2/${REPO}/blobs/${layer.digest} HTTP/1.1\r\nHost: 127.1\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBe(400);
    expect(answer.body).toContain('"errors"');
    expect(reachedApp.length).toBe(before);
  });
});

describe('warm-blob lane, an answer it cannot write', () => {
  it('releases the blob, cuts the response and logs the error, never crashing the process', async () => {
    let released = 0;
    const answer: BlobAnswer = { size: 10, range: undefined, origin: 'cache', body: { kind: 'file', path: '/nonexistent', size: 10, relativePath: 'x' }, release: () => void (released += 1) };
    const registry = { blobHeldInMemory: () => true, blob: async () => answer } as unknown as RegistryService;
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }));
    const { metrics, usage } = mirror.observability.http;
    const lane = warmBlobLane({ registry, router: mirror.router, accessLog: { log, metrics, usage }, sendfile: true, sendTimeoutMs: 60_000 });
    let destroyedWith: Error | undefined;
    const events = new EventEmitter();
    const outgoing = Object.assign(events, {
      socket: null, closed: false, writableFinished: false, statusCode: 200,
      getHeader: () => undefined,
      setHeader() {
        throw new Error('the header could not be set');
      },
      destroy(error: Error) {
        destroyedWith = error;
        events.emit('close');
      },
    }) as unknown as ServerResponse;
    const incoming = { method: 'GET', url: `/v2/${REPO}/blobs/${layer.digest}`, headers: { host: '127.0.0.1' } } as unknown as IncomingMessage;
    let handedToApp = 0;
    expect(lane(incoming, outgoing, () => void (handedToApp += 1))).toBe(true);
    await waitFor(() => destroyedWith !== undefined, 2_000, 'the response destroyed');
    expect(destroyedWith?.message).toBe('the header could not be set');
    expect(released).toBe(1);
    expect(handedToApp).toBe(0);
    const failure = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'request failed');
    expect(failure).toMatchObject({ level: 50, method: 'GET', path: `/v2/${REPO}/blobs/${layer.digest}` });
  });
});

describe('warm-blob lane behind the access policy', () => {
  it('hands the app a held blob asked for through a repository the policy has no fresh verdict on', async () => {
    const upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
    const harness = await startLaneHarness(upstream, { username: 'alice', password: 'upstream-pw' });
    try {
      pushImage(upstream, REPO, 'latest', image);
      pushImage(upstream, 'library/busybox', 'latest', image);
      const blob = (repo: string) => `/v2/${repo}/blobs/${layer.digest}`;
      expect((await get(`${harness.appUrl}${blob(REPO)}`)).status).toBe(200);
      await fillsSettled(harness);
      // Allowed from memory through the repository it was fetched through.
      await waitFor(async () => {
        const before = harness.reachedApp.length;
        return (await get(`${harness.laneUrl}${blob(REPO)}`)).status === 200 && harness.reachedApp.length === before;
      }, 5_000, 'the lane to answer through the repository the blob came through');
      // Held, but no verdict on this repository yet: the app checks it (and answers, as it is public).
      const before = harness.reachedApp.length;
      const response = await get(`${harness.laneUrl}${blob('library/busybox')}`);
      expect(response.status).toBe(200);
      expect(sha256(response.body)).toBe(layer.digest);
      expect(harness.reachedApp.slice(before)).toEqual([blob('library/busybox')]);
    } finally {
      await harness.close();
      await upstream.close();
    }
  });
});

describe('warm-blob lane with client authentication', () => {
  it('is not there: every request authenticates in the app', async () => {
    const setup = await startHosted({ users: { alice: 'secret' } });
    try {
      expect(setup.mirror.mirror.lane).toBeUndefined();
    } finally {
      await setup.close();
    }
  });
});
