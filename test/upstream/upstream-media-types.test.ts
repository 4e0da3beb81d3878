/**
 * Manifests come back from the upstream client only with a manifest media type from the known
 * set, taken from the manifest's own `mediaType` and checked against the Content-Type; anything
 * else is the upstream's fault (UpstreamBadResponseError, a 502).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../src/domain/errors.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  manifestMediaType,
  MANIFEST_MEDIA_TYPES,
  OCI_ARTIFACT_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  UPSTREAM_MANIFEST_ACCEPT,
} from '../../src/domain/media-types.js';
import type { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, send, startServer, upstreamFor } from './fake-servers.js';

const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

const manifest = (fields: Record<string, unknown>) => JSON.stringify({ schemaVersion: 2, config: {}, layers: [], ...fields });

/** An upstream answering every manifest request with this Content-Type (raw bytes) and body. */
async function answering(contentType: string | undefined, body: string) {
  const server = await startServer((req, res) => {
    const headers: Record<string, string> = {};
    if (contentType !== undefined) headers['content-type'] = contentType; // Node writes header strings as Latin-1
    res.writeHead(200, { 'content-length': Buffer.byteLength(body), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const upstream = upstreamFor(server.origin);
  upstreams.push(upstream);
  return upstream;
}

describe('UpstreamRegistry.fetchManifest media types', () => {
  it.each([
    ['text/html with an OCI manifest body', 'text/html; charset=utf-8', manifest({ mediaType: OCI_MANIFEST })],
    ['text/html without a mediaType field', 'text/html', manifest({})],
    ['a manifest claiming text/html', 'text/html', manifest({ mediaType: 'text/html' })],
    ['Content-Type and mediaType disagreeing', OCI_INDEX, manifest({ mediaType: DOCKER_MANIFEST })],
    ['an unknown vendor type', 'application/vnd.example.thing+json', manifest({ mediaType: 'application/vnd.example.thing+json' })],
    ['Docker schema 1 (not served by this mirror)', 'application/vnd.docker.distribution.manifest.v1+prettyjws', '{"schemaVersion":1}'],
    ['a body that is not JSON', OCI_MANIFEST, '<html><script>alert(1)</script></html>'],
    ['JSON that is not an object', OCI_MANIFEST, '"just a string"'],
    ['no type anywhere and no manifest shape', 'application/json', '{"AccessKeyId":"x"}'],
  ])('refuses %s as a 502', async (_label, contentType, body) => {
    const upstream = await answering(contentType, body);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });

  it('refuses a Latin-1 Content-Type with an unknown type, naming it readably', async () => {
    const upstream = await answering('application/vnd.oci.image.manifest.v1+json\u00e9\u00ff', manifest({}));
    const error = (await upstream.fetchManifest('library/alpine', 'latest', GET).catch((caught: unknown) => caught)) as Error;
    expect(error).toBeInstanceOf(UpstreamBadResponseError);
    expect(error.message).toContain('is not a manifest media type');
  });

  it.each([
    ['the mediaType field, parameters ignored', `${OCI_MANIFEST}; charset=utf-8`, manifest({ mediaType: OCI_MANIFEST }), OCI_MANIFEST],
    ['the field when Content-Type is generic JSON', 'application/json', manifest({ mediaType: DOCKER_MANIFEST_LIST, manifests: [] }), DOCKER_MANIFEST_LIST],
    ['the field when there is no Content-Type', undefined, manifest({ mediaType: OCI_ARTIFACT_MANIFEST }), OCI_ARTIFACT_MANIFEST],
    ['the Content-Type when the field is absent', OCI_INDEX, '{"schemaVersion":2,"manifests":[]}', OCI_INDEX],
    ['media types compare case-insensitively', 'Application/VND.oci.image.manifest.v1+JSON', manifest({ mediaType: OCI_MANIFEST }), OCI_MANIFEST],
    ['an OCI index by its shape when nothing names a type', 'application/json', '{"schemaVersion":2,"manifests":[]}', OCI_INDEX],
    ['an OCI manifest by its shape when nothing names a type', undefined, manifest({}), OCI_MANIFEST],
  ])('serves %s', async (_label, contentType, body, expected) => {
    const upstream = await answering(contentType, body);
    const result = await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(result.mediaType).toBe(expected);
    expect(result.bytes?.toString()).toBe(body);
  });

  it('a HEAD reports a known type only', async () => {
    expect((await (await answering(OCI_INDEX, '')).fetchManifest('library/alpine', 'latest', { ...GET, method: 'HEAD' })).mediaType).toBe(OCI_INDEX);
    expect((await (await answering('text/html', '')).fetchManifest('library/alpine', 'latest', { ...GET, method: 'HEAD' })).mediaType).toBeUndefined();
  });

  it('refuses a malformed Docker-Content-Digest as a 502', async () => {
    const server = await startServer((_req, res) => send(res, 200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': 'sha256:../../etc' }, manifest({ mediaType: OCI_MANIFEST })));
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamBadResponseError);
    await expect(upstream.fetchManifest('library/alpine', 'latest', { ...GET, method: 'HEAD' })).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });
});

describe('manifestMediaType', () => {
  it('answers only with a type from the known set, whatever it is given', () => {
    const body = fc.oneof(
      fc.string(),
      fc.record({ schemaVersion: fc.constantFrom(2, 1, '2'), mediaType: fc.oneof(fc.string(), fc.constantFrom(...MANIFEST_MEDIA_TYPES)) }).map((value) => JSON.stringify(value)),
    );
    const declared = fc.option(fc.oneof(fc.string(), fc.constantFrom(...MANIFEST_MEDIA_TYPES, 'application/json', 'text/html')), { nil: undefined });
    fc.assert(
      fc.property(body, declared, (text, contentType) => {
        const verdict = manifestMediaType(Buffer.from(text), contentType);
        return 'problem' in verdict ? typeof verdict.problem === 'string' : MANIFEST_MEDIA_TYPES.includes(verdict.mediaType);
      }),
      { numRuns: 3000 },
    );
  });
});
