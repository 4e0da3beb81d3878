import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { UnauthorizedError, UpstreamBadResponseError } from '../../src/domain/errors.js';
import type { UpstreamRegistry, UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';
import { acceptIssuedTokens, closeAllServers, send, startBearerRegistry, startServer, startTokenServer, upstreamFor, type Handler } from './fake-servers.js';

const BLOB = `sha256:${'c'.repeat(64)}`;
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

/** `redirectHosts`: the CDN stand-ins, on loopback like everything here, must be allowed by name. */
async function bearerRegistryWith(routes: Handler, responses: UpstreamResponseInfo[] = [], redirectHosts: string[] = []) {
  const tokens = await startTokenServer();
  const registry = await startBearerRegistry(() => `${tokens.origin}/token`, routes);
  acceptIssuedTokens(tokens, registry);
  const upstream = upstreamFor(registry.origin, { tokenRealms: [tokens.host], redirectHosts }, responses);
  upstreams.push(upstream);
  return { registry, upstream };
}

describe('UpstreamRegistry redirects', () => {
  it('follows a blob redirect to a CDN without sending Authorization there', async () => {
    const cdn = await startServer((_req, res) => send(res, 200, { 'content-type': 'application/octet-stream' }, 'layer-bytes'));
    const responses: UpstreamResponseInfo[] = [];
    const { registry, upstream } = await bearerRegistryWith((_req, res) => send(res, 307, { location: `${cdn.origin}/blobs/c?sig=opaque` }), responses, [cdn.host]);
    const blob = await upstream.fetchBlob('library/alpine', BLOB);
    expect(await text(blob.body)).toBe('layer-bytes');
    expect(blob.size).toBe(11);
    expect(registry.requests.at(-1)!.headers.authorization).toBe('Bearer tok-1');
    expect(cdn.requests).toHaveLength(1);
    expect(cdn.requests[0]!.path).toBe('/blobs/c?sig=opaque');
    expect(cdn.requests[0]!.headers.authorization).toBeUndefined();
    expect(cdn.requests[0]!.headers['user-agent']).toBe('registry-mirror/0.1');
    expect(responses.filter((r) => r.kind === 'blob').map((r) => r.status)).toEqual([401, 307, 200]);
  });

  it('resolves a relative Location against the current URL and keeps Authorization on the same origin', async () => {
    const { registry, upstream } = await bearerRegistryWith((req, res) => {
      if (req.url!.includes('/blobs/sha256:')) return send(res, 302, { location: 'storage/blob-c' }); // relative to .../blobs/
      send(res, 200, {}, 'same-origin');
    });
    const blob = await upstream.fetchBlob('library/alpine', BLOB);
    expect(await text(blob.body)).toBe('same-origin');
    const last = registry.requests.at(-1)!;
    expect(last.path).toBe('/v2/library/alpine/blobs/storage/blob-c');
    expect(last.headers.authorization).toBe('Bearer tok-1');
  });

  it('does not add Authorization back when a later hop returns to the registry origin', async () => {
    let registryOrigin = '';
    const cdn = await startServer((_req, res) => send(res, 308, { location: `${registryOrigin}/final` }));
    const { registry, upstream } = await bearerRegistryWith((req, res) => {
      if (req.url === '/final') return send(res, 200, {}, 'back-home');
      send(res, 307, { location: `${cdn.origin}/hop` });
    }, [], [cdn.host]);
    registryOrigin = registry.origin;
    // The final hop has no token, so the fake registry answers 401: from the registry's origin,
    // the client retries the whole chain once, and still never sends the token off-origin.
    await expect(upstream.fetchBlob('library/alpine', BLOB)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(cdn.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
    expect(registry.requests.filter((r) => r.path === '/final').every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('stops after 5 redirects', async () => {
    const loop = await startServer((req, res) => send(res, 301, { location: `${req.url}x` }));
    const upstream = upstreamFor(loop.origin);
    upstreams.push(upstream);
    await expect(upstream.fetchBlob('library/alpine', BLOB)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    expect(loop.requests).toHaveLength(6);
  });

  it('refuses a redirect to a non-http(s) URL', async () => {
    const server = await startServer((_req, res) => send(res, 302, { location: 'file:///etc/passwd' }));
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    await expect(upstream.fetchBlob('library/alpine', BLOB)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    expect(server.requests).toHaveLength(1);
  });
});
