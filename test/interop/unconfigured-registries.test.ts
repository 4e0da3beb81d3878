/**
 * Issue 4, "the mirror opens no connection anywhere": requests that name a registry the mirror is
 * not configured for (by containerd's `?ns=`, by a podman-style path prefix, with ports, userinfo,
 * URL schemes, percent-encoding or duplicated parameters) get a 4xx OCI error at once.
 *
 * Several of them name a tripwire: a loopback port that counts every connection. Afterwards the
 * tripwire, both upstream proxies, the CDN and the token server must have seen nothing at all,
 * even for a blob the mirror has cached (blobs are shared by digest across upstreams, but a
 * request for an unconfigured registry is refused before the store is consulted).
 * Requests are sent with node:http so the request target reaches the mirror byte for byte
 * (fetch would normalise `..` segments and percent-encoding first).
 */
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { startMirror, type RunningMirror } from './support/mirror.js';
import { findImage } from './support/catalog.js';
import { Tripwire } from './support/tripwire.js';
import { MEDIA } from './support/images.js';

const REQUEST_DEADLINE_MS = 10_000;
const ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

let root: string;
let upstreams: Upstreams | undefined;
let mirror: RunningMirror | undefined;
let tripwire: Tripwire | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-unconfigured-'));
  tripwire = await Tripwire.start();
  upstreams = await startUpstreams(join(root, 'upstreams'));
  mirror = await startMirror(join(root, 'mirror'), upstreams);
});

afterAll(async () => {
  await mirror?.stop();
  await upstreams?.stop();
  await tripwire?.close();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env() {
  if (!upstreams || !mirror || !tripwire) throw new Error('interop environment did not start');
  return { upstreams, mirror, tripwire };
}

interface RawResponse {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** Sends `target` exactly as written (no URL parsing or normalisation on our side). */
function rawRequest(method: string, target: string): Promise<RawResponse> {
  const { port } = new URL(env().mirror.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: target, headers: { accept: ACCEPT }, timeout: REQUEST_DEADLINE_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${target}: no answer within ${REQUEST_DEADLINE_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** [method, request target, expected status, expected OCI error code]. */
type Case = readonly [string, string, number, string];

function hostileRequests(): Case[] {
  const wire = env().tripwire.host;
  const port = env().tripwire.port;
  const alpine = findImage(env().upstreams.catalog, 'library/alpine', '3.20').image;
  const cachedBlob = alpine.kind === 'manifest' ? alpine.blobs[1]!.digest : '';
  const manifest = '/v2/library/alpine/manifests/3.20';
  return [
    // containerd style: ?ns= naming a registry that is not configured
    ['GET', `${manifest}?ns=evil.example.com`, 404, 'NAME_UNKNOWN'],
    ['GET', `${manifest}?ns=${wire}`, 404, 'NAME_UNKNOWN'],
    ['HEAD', `${manifest}?ns=${wire}`, 404, ''],
    ['GET', `${manifest}?ns=localhost:${port}`, 404, 'NAME_UNKNOWN'],
    ['GET', `${manifest}?ns=gcr.io:${port}`, 404, 'NAME_UNKNOWN'],
    ['GET', `${manifest}?ns=docker.io.${wire}`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/library/alpine/blobs/${cachedBlob}?ns=${wire}`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/library/alpine/tags/list?ns=${wire}`, 404, 'NAME_UNKNOWN'],
    // ns that is not a registry host name at all: userinfo, schemes, paths, IPv6, control bytes
    ['GET', `${manifest}?ns=user@${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=user:pass@${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=docker.io%40${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=http://${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=%68ttp%3A%2F%2F${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=${wire}/v2`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=[::1]:${port}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=docker.io%00${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=docker.io%0d%0aHost:%20${wire}`, 400, 'NAME_INVALID'],
    ['GET', `${manifest}?ns=`, 400, 'NAME_INVALID'],
    // percent-encoding that decodes to a host:port is still only a name, and not a configured one
    ['GET', `${manifest}?ns=127.0.0.1%3A${port}`, 404, 'NAME_UNKNOWN'],
    // two ns parameters: which one is meant is ambiguous, so neither is used
    ['GET', `${manifest}?ns=docker.io&ns=${wire}`, 400, 'BAD_REQUEST'],
    // podman style: the registry as the first path component
    ['GET', '/v2/evil.example.com/x/manifests/latest', 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/${wire}/library/alpine/manifests/3.20`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/localhost:${port}/library/alpine/manifests/3.20`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/${wire}/library/alpine/blobs/${cachedBlob}`, 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/gcr.io@${wire}/x/manifests/latest`, 400, 'NAME_INVALID'],
    ['GET', '/v2/evil.example.com%2Fx/manifests/latest', 400, 'NAME_INVALID'],
    ['GET', `/v2/..%2f..%2f${wire}/x/manifests/latest`, 400, 'NAME_INVALID'],
  ];
}

describe('requests naming unconfigured registries', () => {
  beforeAll(async () => {
    // Cache alpine through the default upstream first, so a refused blob request below is
    // refused by routing, not merely missing from the store.
    const response = await rawRequest('GET', '/v2/library/alpine/manifests/3.20');
    expect(response.status).toBe(200);
    const alpine = findImage(env().upstreams.catalog, 'library/alpine', '3.20').image;
    for (const blob of alpine.kind === 'manifest' ? alpine.blobs : []) expect((await rawRequest('GET', `/v2/library/alpine/blobs/${blob.digest}`)).status).toBe(200);
  });

  it('each get a 4xx OCI error, and nothing is dialled: not the tripwire, not an upstream', async () => {
    const { upstreams: up, tripwire: wire } = env();
    const marks = { hub: up.hub.proxy.requests.mark(), gcr: up.gcr.proxy.requests.mark(), cdn: up.cdn.requests.mark(), token: up.token.requests.mark() };
    const outcomes: string[] = [];
    const expected: string[] = [];
    for (const [method, target, status, code] of hostileRequests()) {
      const response = await rawRequest(method, target);
      const actualCode = method === 'HEAD' ? '' : errorCode(response);
      outcomes.push(`${method} ${target} -> ${response.status} ${actualCode}`);
      expected.push(`${method} ${target} -> ${status} ${code}`);
    }
    expect(outcomes).toEqual(expected);
    expect(wire.connections, 'connections to the tripwire named in the requests').toBe(0);
    expect(up.hub.proxy.requests.linesSince(marks.hub), 'requests at hub').toEqual([]);
    expect(up.gcr.proxy.requests.linesSince(marks.gcr), 'requests at gcr').toEqual([]);
    expect(up.cdn.requests.linesSince(marks.cdn), 'requests at the CDN').toEqual([]);
    expect(up.token.requests.linesSince(marks.token), 'requests at the token server').toEqual([]);
  });

  it('the configured registries are still served, by ns and by prefix (control)', async () => {
    const distroless = findImage(env().upstreams.catalog, 'distroless/static', 'nonroot').image;
    for (const target of ['/v2/distroless/static/manifests/nonroot?ns=gcr.io', '/v2/gcr.io/distroless/static/manifests/nonroot', '/v2/distroless/static/manifests/nonroot?ns=GCR.IO']) {
      const response = await rawRequest('GET', target);
      expect(response.status, target).toBe(200);
      expect(response.contentType, target).toBe(distroless.mediaType);
    }
  });
});

/** The first error code of an OCI error body (distribution-spec "Error Codes"), or a description of what came instead. */
function errorCode(response: RawResponse): string {
  if (!response.contentType?.startsWith('application/json')) return `(content-type ${response.contentType ?? 'none'})`;
  try {
    const body = JSON.parse(response.body) as { errors?: Array<{ code?: unknown }> };
    return typeof body.errors?.[0]?.code === 'string' ? body.errors[0].code : '(no errors[0].code)';
  } catch {
    return '(body is not JSON)';
  }
}
