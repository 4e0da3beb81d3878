/**
 * The mirror's own upstream credentials must not open private repositories to clients that did
 * not authenticate (pull-through/access-policy.ts). Upstream: bearer tokens, `testuser/` private,
 * user alice. Mirror: alice's credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { fillThrough } from '../helpers/fill-through.js';
import { basicAuth, get, head, sha256 } from '../helpers/http.js';
import { fillsSettled, startMirror, type MirrorUnderTest, type RawConfig } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestImage } from '../helpers/test-images.js';
import { tempDir, writeHtpasswd, type TempDir } from './security-fixture.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';

describe('private upstream repositories', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let upstreamConfig: RawConfig['upstreams'];
  const publicImage = makeImage({ layers: [3000, 5000], seed: 'public' });
  const privateImage = makeImage({ layers: [7000], seed: 'private' });
  const privateLayer = privateImage.layers[0]!.digest;

  beforeAll(async () => {
    dir = await tempDir('mirror-private-');
    await writeHtpasswd(dir.file('htpasswd'), { carol: 'client-pw' });
    upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
    pushImage(upstream, PUBLIC, 'latest', publicImage);
    pushImage(upstream, PRIVATE, 'v1', privateImage);
    upstreamConfig = { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } };
  });
  afterAll(async () => {
    await upstream?.close();
    await dir?.remove();
  });

  /** Manifest plus every blob; returns the statuses. */
  async function pull(url: string, repo: string, tag: string, image: TestImage, headers: Record<string, string> = {}): Promise<number[]> {
    const manifest = await get(`${url}/v2/${repo}/manifests/${tag}`, { accept: image.manifest.mediaType, ...headers });
    const statuses = [manifest.status];
    if (manifest.status === 200) expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
    for (const blob of [image.config, ...image.layers]) {
      const response = await get(`${url}/v2/${repo}/blobs/${blob.digest}`, headers);
      if (response.status === 200) expect(sha256(response.body)).toBe(blob.digest);
      statuses.push(response.status);
    }
    return statuses;
  }

  function expectNotFound(response: { status: number; body: Buffer }, code: string): void {
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body.toString()).errors[0].code).toBe(code);
  }

  describe('with client auth (htpasswd)', () => {
    let mirror: MirrorUnderTest;
    beforeAll(async () => {
      mirror = await startMirror({ upstreams: upstreamConfig, auth: { htpasswd: dir.file('htpasswd') } });
    });
    afterAll(() => mirror?.stop());

    it('serves private content to authenticated clients, and challenges the rest', async () => {
      const authorization = basicAuth('carol', 'client-pw');
      expect(await pull(mirror.url, PRIVATE, 'v1', privateImage, { authorization })).toEqual([200, 200, 200]);
      const anonymous = await get(`${mirror.url}/v2/${PRIVATE}/manifests/v1`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm="registry-mirror"/);
    });
  });

  describe('without client auth, on the cache the authenticated mirror filled', () => {
    let mirror: MirrorUnderTest;
    beforeAll(async () => {
      // Same cache directory: the private image is on disk from the test above.
      const cacheDir = (await import('node:path')).join(dir.dir, 'shared-cache');
      const filler = await startMirror({ upstreams: upstreamConfig, auth: { htpasswd: dir.file('htpasswd') } }, { cacheDir });
      expect(await pull(filler.url, PRIVATE, 'v1', privateImage, { authorization: basicAuth('carol', 'client-pw') })).toEqual([200, 200, 200]);
      await fillsSettled(filler);
      await filler.stop();
      mirror = await startMirror({ upstreams: upstreamConfig }, { cacheDir });
    });
    afterAll(() => mirror?.close());

    it('refuses the private repository to anonymous clients as if it did not exist', async () => {
      expectNotFound(await get(`${mirror.url}/v2/${PRIVATE}/manifests/v1`), 'NAME_UNKNOWN');
      expectNotFound(await get(`${mirror.url}/v2/${PRIVATE}/manifests/${privateImage.manifest.digest}`), 'NAME_UNKNOWN');
      expectNotFound(await get(`${mirror.url}/v2/${PRIVATE}/blobs/${privateLayer}`), 'NAME_UNKNOWN');
      expect((await head(`${mirror.url}/v2/${PRIVATE}/blobs/${privateLayer}`)).status).toBe(404);
      expectNotFound(await get(`${mirror.url}/v2/${PRIVATE}/tags/list`), 'NAME_UNKNOWN');
    });

    it('does not hand out cached private content under a public repository name', async () => {
      expectNotFound(await get(`${mirror.url}/v2/${PUBLIC}/blobs/${privateLayer}`), 'BLOB_UNKNOWN');
      expect((await head(`${mirror.url}/v2/${PUBLIC}/blobs/${privateLayer}`)).status).toBe(404);
      expectNotFound(await get(`${mirror.url}/v2/${PUBLIC}/manifests/${privateImage.manifest.digest}`), 'MANIFEST_UNKNOWN');
    });

    it('serves public repositories, and once probed they cost no extra upstream requests', async () => {
      upstream.resetCounts();
      expect(await pull(mirror.url, PUBLIC, 'latest', publicImage)).toEqual([200, 200, 200, 200]);
      // The one anonymous probe (a manifest HEAD); blobs fetched through a readable repository need none.
      expect(upstream.count({ server: 'registry', method: 'HEAD' })).toBe(1);
      expect(upstream.count({ server: 'registry', method: 'GET', pathIncludes: '/blobs/' })).toBe(3);
      // Warm: manifest by tag within its TTL, blobs from the cache; nothing reaches the upstream.
      await fillsSettled(mirror);
      upstream.resetCounts();
      expect(await pull(mirror.url, PUBLIC, 'latest', publicImage)).toEqual([200, 200, 200, 200]);
      expect((await head(`${mirror.url}/v2/${PUBLIC}/manifests/${publicImage.manifest.digest}`)).status).toBe(200);
      expect(upstream.count()).toBe(0);
    });

    it('remembers verdicts and sources across a restart: a cached public image costs zero upstream requests', async () => {
      await pull(mirror.url, PUBLIC, 'latest', publicImage);
      await fillsSettled(mirror);
      const cacheDir = mirror.cacheDir;
      await mirror.stop();
      mirror = await startMirror({ upstreams: upstreamConfig }, { cacheDir });
      upstream.resetCounts();
      expect(await pull(mirror.url, PUBLIC, 'latest', publicImage)).toEqual([200, 200, 200, 200]);
      expect((await head(`${mirror.url}/v2/${PUBLIC}/manifests/${publicImage.manifest.digest}`)).status).toBe(200);
      expect(upstream.count()).toBe(0);
      // What was private before the restart is still refused after it.
      expectNotFound(await get(`${mirror.url}/v2/${PUBLIC}/blobs/${privateLayer}`), 'BLOB_UNKNOWN');
      expectNotFound(await get(`${mirror.url}/v2/${PRIVATE}/manifests/v1`), 'NAME_UNKNOWN');
    });

    it('does not apply offline: the mirror uses no credentials then, and serves what the operator cached', async () => {
      const offline = await startMirror({ upstreams: upstreamConfig, offline: true }, { cacheDir: mirror.cacheDir });
      try {
        upstream.resetCounts();
        expect(await pull(offline.url, PUBLIC, 'latest', publicImage)).toEqual([200, 200, 200, 200]);
        expect(await pull(offline.url, PRIVATE, 'v1', privateImage)).toEqual([200, 200, 200]);
        expect(upstream.count()).toBe(0);
      } finally {
        await offline.stop();
      }
    });

    it('checks a digest first cached through a private repository before serving it under a public name', async () => {
      // Another layer, fetched by the mirror itself through the private repository (as warm would).
      const shared = makeImage({ layers: [1500], seed: 'shared-layer' });
      const sharedLayer = shared.layers[0]!;
      upstream.addBlob(sharedLayer.bytes, PRIVATE);
      expect(sha256(await fillThrough(mirror.mirror, PRIVATE, sharedLayer.digest))).toBe(sharedLayer.digest);
      upstream.resetCounts();
      expectNotFound(await get(`${mirror.url}/v2/${PUBLIC}/blobs/${sharedLayer.digest}`), 'BLOB_UNKNOWN');
      // Now the public repository has it too: one anonymous check, then served from the cache.
      upstream.addBlob(sharedLayer.bytes, PUBLIC);
      upstream.resetCounts();
      const served = await get(`${mirror.url}/v2/${PUBLIC}/blobs/${sharedLayer.digest}`);
      expect(served.status).toBe(200);
      expect(sha256(served.body)).toBe(sharedLayer.digest);
      expect(upstream.count({ server: 'registry', method: 'GET', pathIncludes: '/blobs/' })).toBe(0);
      upstream.resetCounts();
      expect((await get(`${mirror.url}/v2/${PUBLIC}/blobs/${sharedLayer.digest}`)).status).toBe(200);
      expect(upstream.count()).toBe(0);
    });
  });

  describe('under an upstream the mirror has no credentials for', () => {
    const OPEN_PUBLIC = 'team/tools';
    const openImage = makeImage({ layers: [2500], seed: 'open-upstream' });
    let open: FakeRegistry;
    let mirror: MirrorUnderTest;
    beforeAll(async () => {
      open = await startFakeRegistry();
      pushImage(open, OPEN_PUBLIC, 'v1', openImage);
      const cacheDir = (await import('node:path')).join(dir.dir, 'open-upstream-cache');
      const upstreams = { ...upstreamConfig, 'quay.io': { url: open.url }, 'dead.io': { url: 'http://127.0.0.1:1' } };
      const filler = await startMirror({ upstreams, auth: { htpasswd: dir.file('htpasswd') } }, { cacheDir });
      expect(await pull(filler.url, PRIVATE, 'v1', privateImage, { authorization: basicAuth('carol', 'client-pw') })).toEqual([200, 200, 200]);
      await fillsSettled(filler);
      await filler.stop();
      mirror = await startMirror({ upstreams }, { cacheDir });
    });
    afterAll(async () => {
      await mirror?.close();
      await open?.close();
    });

    it('does not hand out cached private content by digest under its names: its upstream is asked, as for any content it does not vouch for', async () => {
      open.resetCounts();
      expectNotFound(await get(`${mirror.url}/v2/quay.io/anything/blobs/${privateLayer}`), 'BLOB_UNKNOWN');
      expectNotFound(await get(`${mirror.url}/v2/anything/blobs/${privateLayer}?ns=quay.io`), 'BLOB_UNKNOWN');
      expect((await head(`${mirror.url}/v2/quay.io/anything/blobs/${privateLayer}`)).status).toBe(404);
      expectNotFound(await get(`${mirror.url}/v2/quay.io/anything/manifests/${privateImage.manifest.digest}`), 'MANIFEST_UNKNOWN');
      expect(open.count({ server: 'registry', pathIncludes: privateLayer })).toBeGreaterThan(0);
    });

    it('an upstream that cannot be reached cannot vouch for it either', async () => {
      for (const path of [`/v2/dead.io/anything/blobs/${privateLayer}`, `/v2/dead.io/anything/manifests/${privateImage.manifest.digest}`]) {
        const response = await get(`${mirror.url}${path}`);
        expect(response.status, path).toBeGreaterThanOrEqual(400);
        expect(response.body.includes(privateImage.layers[0]!.bytes.subarray(0, 64)), path).toBe(false);
      }
    });

    it('serves its own content, and what it holds under the same digest, once it vouched for it; warm, without asking again', async () => {
      expect(await pull(mirror.url, `quay.io/${OPEN_PUBLIC}`, 'v1', openImage)).toEqual([200, 200, 200]);
      await fillsSettled(mirror);
      open.resetCounts();
      expect(await pull(mirror.url, `quay.io/${OPEN_PUBLIC}`, 'v1', openImage)).toEqual([200, 200, 200]);
      expect(open.count({ server: 'registry', pathIncludes: '/blobs/' })).toBe(0);
      // The private layer, pushed to the open upstream too: asked once, then served from the cache.
      open.addBlob(privateImage.layers[0]!.bytes, OPEN_PUBLIC);
      const served = await get(`${mirror.url}/v2/quay.io/${OPEN_PUBLIC}/blobs/${privateLayer}`);
      expect(served.status).toBe(200);
      expect(sha256(served.body)).toBe(privateLayer);
      expect(open.count({ server: 'registry', method: 'GET', pathIncludes: '/blobs/' })).toBe(0);
      open.resetCounts();
      expect((await get(`${mirror.url}/v2/quay.io/${OPEN_PUBLIC}/blobs/${privateLayer}`)).status).toBe(200);
      expect(open.count()).toBe(0);
    });
  });
});
