import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../src/domain/errors.js';
import { MAX_MANIFEST_BYTES, OCI_INDEX, UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import type { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, DIGEST, MANIFEST_BODY, manifestRoute, send, startServer, upstreamFor, type Handler } from './fake-servers.js';

const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

async function serving(handler: Handler, path = '') {
  const server = await startServer(handler);
  const upstream = upstreamFor(server.origin + path);
  upstreams.push(upstream);
  return { server, upstream };
}

describe('UpstreamRegistry manifests', () => {
  it('returns digest, media type without parameters, size and bytes for a GET', async () => {
    const { server, upstream } = await serving((_req, res) =>
      send(res, 200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json; charset=utf-8', 'docker-content-digest': DIGEST }, MANIFEST_BODY),
    );
    const result = await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(result).toEqual({ digest: DIGEST, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: MANIFEST_BODY.length, bytes: Buffer.from(MANIFEST_BODY) });
    expect(server.requests[0]).toMatchObject({ method: 'GET', path: '/v2/library/alpine/manifests/latest' });
    expect(server.requests[0]!.headers.accept).toBe(UPSTREAM_MANIFEST_ACCEPT);
    expect(server.requests[0]!.headers['user-agent']).toBe('registry-mirror/0.1');
  });

  it('answers a HEAD from headers alone', async () => {
    const { server, upstream } = await serving((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'docker-content-digest': DIGEST, 'content-length': 1234 });
      res.end();
    });
    const result = await upstream.fetchManifest('library/alpine', DIGEST, { ...GET, method: 'HEAD' });
    expect(result).toEqual({ digest: DIGEST, mediaType: OCI_INDEX, size: 1234, bytes: undefined });
    expect(server.requests[0]).toMatchObject({ method: 'HEAD', path: `/v2/library/alpine/manifests/${DIGEST}` });
  });

  it('rejects a manifest over MAX_MANIFEST_BYTES, declared or streamed', async () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    const declared = await serving((_req, res) => send(res, 200, {}, big));
    await expect(declared.upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    const chunked = await serving((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // no Content-Length: chunked
      res.end(big);
    });
    await expect(chunked.upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });

  it('builds URLs under a base path in config.url', async () => {
    const { server, upstream } = await serving(manifestRoute, '/mirror/prefix/');
    await upstream.fetchManifest('team/app', 'v1', GET);
    expect(server.requests[0]!.path).toBe('/mirror/prefix/v2/team/app/manifests/v1');
  });
});

describe('UpstreamRegistry blobs, tags and referrers', () => {
  it('HEADs a blob for its size', async () => {
    const { server, upstream } = await serving((_req, res) => {
      res.writeHead(200, { 'content-length': 4096 });
      res.end();
    });
    await expect(upstream.headBlob('library/alpine', DIGEST)).resolves.toEqual({ size: 4096 });
    expect(server.requests[0]).toMatchObject({ method: 'HEAD', path: `/v2/library/alpine/blobs/${DIGEST}` });
  });

  it('passes n and last through to the tag list and returns the Link header', async () => {
    const body = '{"name":"library/alpine","tags":["3.19","3.20"]}';
    const link = '</v2/library/alpine/tags/list?n=2&last=3.20>; rel="next"';
    const { server, upstream } = await serving((_req, res) => send(res, 200, { 'content-type': 'application/json', link }, body));
    const result = await upstream.fetchTags('library/alpine', '?n=2&last=3.1&evil=1');
    expect(result).toEqual({ body: Buffer.from(body), link });
    expect(server.requests[0]!.path).toBe('/v2/library/alpine/tags/list?n=2&last=3.1');
    await upstream.fetchTags('library/alpine', '');
    expect(server.requests[1]!.path).toBe('/v2/library/alpine/tags/list');
  });

  it('fetches referrers with an artifactType filter', async () => {
    const index = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}';
    const { server, upstream } = await serving((_req, res) => send(res, 200, { 'content-type': OCI_INDEX }, index));
    const result = await upstream.fetchReferrers('library/alpine', DIGEST, 'application/vnd.example+json');
    expect(result).toEqual({ body: Buffer.from(index), contentType: OCI_INDEX });
    expect(server.requests[0]!.path).toBe(`/v2/library/alpine/referrers/${DIGEST}?artifactType=application%2Fvnd.example%2Bjson`);
  });
});
