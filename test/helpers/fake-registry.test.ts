import { afterEach, describe, expect, it } from 'vitest';
import { type FakeRegistry, type FakeRegistryOptions, startFakeRegistry } from './fake-registry.js';
import { basicAuth, get, head, sha256 } from './http.js';
import { MEDIA_TYPES, makeImage, makeIndex, pushImage } from './test-images.js';

let registry: FakeRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

async function start(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  registry = await startFakeRegistry(options);
  return registry;
}

async function bearerToken(upstream: FakeRegistry, repo: string, authorization?: string): Promise<string> {
  const url = `${upstream.tokenUrl}?service=${upstream.service}&scope=repository:${repo}:pull`;
  const response = await get(url, authorization ? { authorization } : {});
  expect(response.status).toBe(200);
  return (JSON.parse(response.body.toString()) as { token: string }).token;
}

describe('fake registry content (auth none)', () => {
  it('answers /v2/ with 200 and the API version header', async () => {
    const upstream = await start();
    const response = await get(`${upstream.url}/v2/`);
    expect(response.status).toBe(200);
    expect(response.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('serves manifests by tag and digest with stored type, digest and length; HEAD has no body', async () => {
    const upstream = await start({ rateLimitHeaders: { limit: 100, remaining: 76, windowSeconds: 21600, source: '10.0.0.1' } });
    const image = makeImage({ layers: [10], seed: 1, mediaTypes: 'docker' });
    const digest = pushImage(upstream, 'library/alpine', 'latest', image);
    const byTag = await get(`${upstream.url}/v2/library/alpine/manifests/latest`, { accept: MEDIA_TYPES.oci.manifest });
    expect(byTag.status).toBe(200);
    expect(byTag.body.equals(image.manifest.bytes)).toBe(true);
    expect(byTag.headers['content-type']).toBe(MEDIA_TYPES.docker.manifest);
    expect(byTag.headers['docker-content-digest']).toBe(digest);
    expect(byTag.headers['ratelimit-limit']).toBe('100;w=21600');
    expect(byTag.headers['ratelimit-remaining']).toBe('76;w=21600');
    expect(byTag.headers['docker-ratelimit-source']).toBe('10.0.0.1');
    const byDigest = await head(`${upstream.url}/v2/library/alpine/manifests/${digest}`);
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.length).toBe(0);
    expect(byDigest.headers['content-length']).toBe(String(image.manifest.size));
    expect(upstream.requests[0]!.headers.accept).toBe(MEDIA_TYPES.oci.manifest);
  });

  it('answers unknown manifests with 404 MANIFEST_UNKNOWN and follows tag moves and deletes', async () => {
    const upstream = await start();
    const first = pushImage(upstream, 'app', 'v1', makeImage({ layers: [1], seed: 'a' }));
    const missing = await get(`${upstream.url}/v2/app/manifests/nope`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).errors[0].code).toBe('MANIFEST_UNKNOWN');
    const second = pushImage(upstream, 'app', undefined, makeImage({ layers: [1], seed: 'b' }));
    upstream.setTag('app', 'v1', second);
    expect((await head(`${upstream.url}/v2/app/manifests/v1`)).headers['docker-content-digest']).toBe(second);
    upstream.deleteTag('app', 'v1');
    expect((await head(`${upstream.url}/v2/app/manifests/v1`)).status).toBe(404);
    expect((await head(`${upstream.url}/v2/app/manifests/${first}`)).status).toBe(200);
  });

  it('serves blobs whole and by single range, 416 beyond the end, 404 under another repository', async () => {
    const upstream = await start();
    const image = makeImage({ layers: [1000], seed: 2 });
    pushImage(upstream, 'app', 'latest', image);
    const layer = image.layers[0]!;
    const whole = await get(`${upstream.url}/v2/app/blobs/${layer.digest}`);
    expect(whole.status).toBe(200);
    expect(sha256(whole.body)).toBe(layer.digest);
    expect(whole.headers['docker-content-digest']).toBe(layer.digest);
    const part = await get(`${upstream.url}/v2/app/blobs/${layer.digest}`, { range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 100-199/1000');
    expect(part.body.equals(layer.bytes.subarray(100, 200))).toBe(true);
    const suffix = await get(`${upstream.url}/v2/app/blobs/${layer.digest}`, { range: 'bytes=-10' });
    expect(suffix.body.equals(layer.bytes.subarray(990))).toBe(true);
    expect((await get(`${upstream.url}/v2/app/blobs/${layer.digest}`, { range: 'bytes=1000-' })).status).toBe(416);
    const elsewhere = await get(`${upstream.url}/v2/other/blobs/${layer.digest}`);
    expect(elsewhere.status).toBe(404);
    expect(JSON.parse(elsewhere.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
  });

  it('lists tags with n/last pagination and a Link header', async () => {
    const upstream = await start();
    const digest = pushImage(upstream, 'app', 'a', makeImage({ layers: [], seed: 3 }));
    for (const tag of ['d', 'b', 'c']) upstream.setTag('app', tag, digest);
    const first = await get(`${upstream.url}/v2/app/tags/list?n=2`);
    expect(JSON.parse(first.body.toString())).toEqual({ name: 'app', tags: ['a', 'b'] });
    expect(first.headers.link).toBe('</v2/app/tags/list?n=2&last=b>; rel="next"');
    const second = await get(`${upstream.url}/v2/app/tags/list?n=2&last=b`);
    expect(JSON.parse(second.body.toString()).tags).toEqual(['c', 'd']);
    expect(second.headers.link).toBeUndefined();
    expect((await get(`${upstream.url}/v2/nothing/tags/list`)).status).toBe(404);
  });

  it('serves referrers only when enabled, filtered by artifactType', async () => {
    const subject = makeImage({ layers: [5], seed: 4 });
    const signature = makeImage({ layers: [5], seed: 5, subject: subject.manifest, artifactType: 'application/vnd.example.sig' });
    const sbom = makeImage({ layers: [5], seed: 6, subject: subject.manifest, artifactType: 'application/vnd.example.sbom' });
    const disabled = await start();
    pushImage(disabled, 'app', 'latest', subject);
    expect((await get(`${disabled.url}/v2/app/referrers/${subject.manifest.digest}`)).status).toBe(404);
    await disabled.close();
    const upstream = await start({ referrersApi: true });
    for (const image of [subject, signature, sbom]) pushImage(upstream, 'app', undefined, image);
    const all = await get(`${upstream.url}/v2/app/referrers/${subject.manifest.digest}`);
    expect(all.headers['content-type']).toBe(MEDIA_TYPES.oci.index);
    expect(JSON.parse(all.body.toString()).manifests.map((m: { digest: string }) => m.digest).sort()).toEqual([signature.manifest.digest, sbom.manifest.digest].sort());
    const filtered = await get(`${upstream.url}/v2/app/referrers/${subject.manifest.digest}?artifactType=application/vnd.example.sig`);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(JSON.parse(filtered.body.toString()).manifests).toEqual([
      { mediaType: MEDIA_TYPES.oci.manifest, digest: signature.manifest.digest, size: signature.manifest.size, artifactType: 'application/vnd.example.sig' },
    ]);
  });

  it('serves an index and its children, and counts requests by server, method, path and status', async () => {
    const upstream = await start();
    const index = makeIndex([makeImage({ layers: [1], seed: 7 }), makeImage({ layers: [1], seed: 8, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } })], 'docker');
    pushImage(upstream, 'multi', 'latest', index);
    const top = await get(`${upstream.url}/v2/multi/manifests/latest`);
    expect(top.headers['content-type']).toBe(MEDIA_TYPES.docker.index);
    const child = JSON.parse(top.body.toString()).manifests[1];
    expect(child.platform).toEqual({ architecture: 'arm64', os: 'linux', variant: 'v8' });
    expect((await get(`${upstream.url}/v2/multi/manifests/${child.digest}`)).status).toBe(200);
    await get(`${upstream.url}/v2/multi/manifests/missing`);
    expect(upstream.count({ server: 'registry', method: 'get', pathIncludes: '/manifests/' })).toBe(3);
    expect(upstream.count({ status: 404 })).toBe(1);
    upstream.resetCounts();
    expect(upstream.count()).toBe(0);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('fake registry auth', () => {
  it('runs the Docker Hub bearer flow: challenge, anonymous token, access', async () => {
    const upstream = await start({ auth: 'bearer' });
    const digest = pushImage(upstream, 'library/alpine', 'latest', makeImage({ layers: [1], seed: 9 }));
    const base = await get(`${upstream.url}/v2/`);
    expect(base.status).toBe(401);
    expect(base.headers['www-authenticate']).toBe(`Bearer realm="${upstream.tokenUrl}",service="fake-registry"`);
    const challenged = await get(`${upstream.url}/v2/library/alpine/manifests/latest`);
    expect(challenged.status).toBe(401);
    expect(challenged.headers['www-authenticate']).toBe(`Bearer realm="${upstream.tokenUrl}",service="fake-registry",scope="repository:library/alpine:pull"`);
    const token = await bearerToken(upstream, 'library/alpine');
    const ok = await get(`${upstream.url}/v2/library/alpine/manifests/latest`, { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
    expect(ok.headers['docker-content-digest']).toBe(digest);
    const otherRepo = await get(`${upstream.url}/v2/library/busybox/manifests/latest`, { authorization: `Bearer ${token}` });
    expect(otherRepo.status).toBe(401);
    expect(otherRepo.headers['www-authenticate']).toContain('error="insufficient_scope"');
    expect(upstream.count({ server: 'token' })).toBe(1);
  });

  it('refuses private repositories to anonymous tokens, grants them to users, rejects bad credentials', async () => {
    const upstream = await start({ auth: 'bearer', users: { alice: 's3cret' }, privatePrefixes: ['acme/'] });
    pushImage(upstream, 'acme/secret', 'latest', makeImage({ layers: [1], seed: 10 }));
    const anonymous = await bearerToken(upstream, 'acme/secret');
    expect((await get(`${upstream.url}/v2/acme/secret/manifests/latest`, { authorization: `Bearer ${anonymous}` })).status).toBe(401);
    const badLogin = await get(`${upstream.tokenUrl}?service=fake-registry&scope=repository:acme/secret:pull`, { authorization: basicAuth('alice', 'wrong') });
    expect(badLogin.status).toBe(401);
    const user = await bearerToken(upstream, 'acme/secret', basicAuth('alice', 's3cret'));
    expect((await get(`${upstream.url}/v2/acme/secret/manifests/latest`, { authorization: `Bearer ${user}` })).status).toBe(200);
    expect(upstream.requests.find((r) => r.server === 'token' && r.headers.authorization)?.headers.authorization).toBe(basicAuth('alice', 'wrong'));
  });

  it('refuses expired and revoked tokens with invalid_token', async () => {
    const upstream = await start({ auth: 'bearer', tokenTtlSeconds: 300 });
    pushImage(upstream, 'app', 'latest', makeImage({ layers: [1], seed: 11 }));
    const token = await bearerToken(upstream, 'app');
    const tokenBody = JSON.parse((await get(`${upstream.tokenUrl}?scope=repository:app:pull`)).body.toString());
    expect(tokenBody.expires_in).toBe(300);
    expect(tokenBody.access_token).toBe(tokenBody.token);
    upstream.revokeTokens();
    const refused = await get(`${upstream.url}/v2/app/manifests/latest`, { authorization: `Bearer ${token}` });
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('speaks Basic auth when configured', async () => {
    const upstream = await start({ auth: 'basic', users: { bob: 'pw' } });
    const refused = await get(`${upstream.url}/v2/`);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Basic realm="fake"');
    expect((await get(`${upstream.url}/v2/`, { authorization: basicAuth('bob', 'pw') })).status).toBe(200);
  });
});

describe('fake registry CDN redirect', () => {
  it('redirects blobs to a signed CDN URL that serves the bytes without auth', async () => {
    const upstream = await start({ auth: 'bearer', redirectBlobsToCdn: true });
    const image = makeImage({ layers: [2048], seed: 12 });
    pushImage(upstream, 'app', 'latest', image);
    const layer = image.layers[0]!;
    const token = await bearerToken(upstream, 'app');
    const redirect = await get(`${upstream.url}/v2/app/blobs/${layer.digest}`, { authorization: `Bearer ${token}` });
    expect(redirect.status).toBe(307);
    const location = redirect.headers.location as string;
    expect(location.startsWith(`${upstream.cdnUrl}/blobs/${layer.digest}?sig=`)).toBe(true);
    const bytes = await get(location);
    expect(bytes.status).toBe(200);
    expect(bytes.body.equals(layer.bytes)).toBe(true);
    const cdnRecord = upstream.requests.find((r) => r.server === 'cdn')!;
    expect(cdnRecord.headers.authorization).toBeUndefined();
    const ranged = await get(location, { range: 'bytes=0-9' });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(layer.bytes.subarray(0, 10))).toBe(true);
    expect((await get(location.replace(/sig=\w+/, 'sig=forged'))).status).toBe(403);
    expect(upstream.count({ server: 'cdn' })).toBe(3);
  });
});
