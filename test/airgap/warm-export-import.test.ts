/**
 * The air-gap workflow end to end against a fake upstream on real sockets: warm fills the cache
 * through the pull-through service (every platform, or the --platform subset), export writes an
 * OCI image layout tar, import loads it into an empty cache, and an offline mirror serves it.
 */
import { createServer, type Server } from 'node:net';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { get, head, sha256 } from '../helpers/http.js';
import { makeImage, makeIndex, pushImage, type TestImage, type TestIndex } from '../helpers/test-images.js';
import { startMirror } from '../helpers/mirror-under-test.js';
import { exportTo, importFrom, readTar, tempDir, toolMirror, warm, writeTar } from './airgap-fixture.js';

const amd64 = makeImage({ layers: [40_000, 3_000], seed: 'alpine-amd64' });
const arm64 = makeImage({ layers: [41_000, 3_100], seed: 'alpine-arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
const attestation = makeImage({ layers: [500], seed: 'alpine-attestation', platform: { os: 'unknown', architecture: 'unknown' } });
const alpine = makeIndex([amd64, arm64, attestation]);
const busybox = makeImage({ layers: [20_000], seed: 'busybox', mediaTypes: 'docker' });
const distroless = makeImage({ layers: [7_000], seed: 'distroless' });
const notWarmed = makeImage({ layers: [1_000], seed: 'not-warmed' });
const WARMED = ['alpine:3.20', 'docker.io/library/busybox:1.36', 'gcr.io/distroless/static:nonroot'];
const ACCEPT_ALL = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json';

let hub: FakeRegistry;
let gcr: FakeRegistry;
let work: { dir: string; remove: () => Promise<void> };

beforeAll(async () => {
  hub = await startFakeRegistry();
  gcr = await startFakeRegistry();
  pushImage(hub, 'library/alpine', '3.20', alpine);
  pushImage(hub, 'library/busybox', '1.36', busybox);
  pushImage(hub, 'library/nope', '1', notWarmed);
  pushImage(gcr, 'distroless/static', 'nonroot', distroless);
  work = await tempDir('airgap-');
});

afterAll(async () => {
  await Promise.all([hub?.close(), gcr?.close(), work?.remove()]);
});

function blobsOf(image: TestImage | TestIndex): string[] {
  const images = image.kind === 'index' ? image.images : [image];
  return images.flatMap((one) => [one.config.digest, ...one.layers.map((layer) => layer.digest)]);
}

function blobGets(fake: FakeRegistry, digest: string): number {
  return fake.count({ method: 'GET', pathIncludes: `/blobs/${digest}` });
}

describe('warm', () => {
  it('fills every platform of a multi-arch index, attestations included, and a second warm costs zero', async () => {
    const cache = path.join(work.dir, 'warm-all');
    const mirror = await toolMirror(cache, { 'docker.io': hub.url, 'gcr.io': gcr.url });
    try {
      hub.resetCounts();
      const results = await warm(mirror, WARMED);
      expect(results.map((result) => result.error)).toEqual([undefined, undefined, undefined]);
      expect(results[0]).toMatchObject({ image: 'docker.io/library/alpine:3.20', digest: alpine.manifest.digest, platforms: ["linux/amd64", "linux/arm64/v8"], blobs: 8 });
      for (const digest of blobsOf(alpine)) expect(blobGets(hub, digest), digest).toBe(1);
      for (const digest of blobsOf(distroless)) expect(blobGets(gcr, digest), digest).toBe(1);
      expect(results[0]!.fetchedBytes).toBe([amd64, arm64, attestation].flatMap((one) => [one.config, ...one.layers]).reduce((sum, blob) => sum + blob.size, 0));

      hub.resetCounts();
      gcr.resetCounts();
      const again = await warm(mirror, WARMED);
      expect(hub.count() + gcr.count()).toBe(0);
      expect(again.map((result) => result.fetchedBytes)).toEqual([0, 0, 0]);
    } finally {
      await mirror.close();
    }
  });

  it('--platform takes only the matching platform manifests and their blobs', async () => {
    const mirror = await toolMirror(path.join(work.dir, 'warm-arm64'), { 'docker.io': hub.url });
    try {
      hub.resetCounts();
      const [result] = await warm(mirror, ['library/alpine:3.20'], [{ os: 'linux', architecture: 'arm64' }]);
      expect(result).toMatchObject({ platforms: ['linux/arm64/v8'], blobs: 3 });
      expect(result!.error).toBeUndefined();
      for (const digest of blobsOf(arm64)) expect(blobGets(hub, digest)).toBe(1);
      for (const digest of [...blobsOf(amd64), ...blobsOf(attestation)]) expect(blobGets(hub, digest)).toBe(0);
      expect(hub.count({ pathIncludes: `/manifests/${amd64.manifest.digest}` })).toBe(0);
    } finally {
      await mirror.close();
    }
  });

  it('reports an image the upstream does not have, and still warms the others', async () => {
    const mirror = await toolMirror(path.join(work.dir, 'warm-missing'), { 'docker.io': hub.url });
    try {
      const results = await warm(mirror, ['library/busybox:1.36', 'library/absent:1', 'quay.io/x/y:1']);
      expect(results[0]!.error).toBeUndefined();
      expect(results[1]!.error).toMatch(/not known to upstream docker.io/);
      expect(results[2]!.error).toMatch(/quay\.io is not mirrored here/);
    } finally {
      await mirror.close();
    }
  });
});

describe('export, import, offline', () => {
  const archive = () => path.join(work.dir, 'warm.tar');

  beforeAll(async () => {
    const mirror = await toolMirror(path.join(work.dir, 'warm-all'), { 'docker.io': hub.url, 'gcr.io': gcr.url });
    try {
      const plan = await exportTo(mirror, 'all', archive());
      expect(plan.failures).toEqual([]);
    } finally {
      await mirror.close();
    }
  });

  it('writes an OCI image layout whose index names every image by full reference and whose blobs hash to their names', async () => {
    const entries = await readTar(archive());
    expect(entries[0]).toEqual({ name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
    const index = JSON.parse(entries.find((entry) => entry.name === 'index.json')!.bytes.toString('utf8'));
    const refs = Object.fromEntries(index.manifests.map((m: any) => [m.annotations['org.opencontainers.image.ref.name'], m]));
    expect(Object.keys(refs).sort()).toEqual(['docker.io/library/alpine:3.20', 'docker.io/library/busybox:1.36', 'gcr.io/distroless/static:nonroot']);
    expect(refs['docker.io/library/alpine:3.20']).toMatchObject({ digest: alpine.manifest.digest, mediaType: alpine.manifest.mediaType, size: alpine.manifest.size });
    expect(refs['docker.io/library/busybox:1.36']).toMatchObject({ digest: busybox.manifest.digest, mediaType: busybox.manifest.mediaType });
    const blobs = entries.filter((entry) => entry.name.startsWith('blobs/'));
    for (const blob of blobs) expect(sha256(blob.bytes)).toBe(`sha256:${path.basename(blob.name)}`);
    const names = new Set(blobs.map((blob) => `sha256:${path.basename(blob.name)}`));
    const expected = [alpine, busybox, distroless].flatMap((image) => [image.manifest.digest, ...blobsOf(image)]);
    expected.push(amd64.manifest.digest, arm64.manifest.digest, attestation.manifest.digest);
    expect([...names].sort()).toEqual([...new Set(expected)].sort());
    expect(blobs.length).toBe(names.size);
  });

  it('imports into an empty cache, and an offline mirror serves every image without dialling its upstream', async () => {
    const cache = path.join(work.dir, 'imported');
    const tool = await toolMirror(cache, { 'docker.io': 'http://127.0.0.1:9', 'gcr.io': 'http://127.0.0.1:9' });
    const result = await importFrom(tool, archive()).finally(() => tool.close());
    expect(result.failures).toEqual([]);
    expect(result.images.map((image) => [image.tag, image.error])).toEqual(expect.arrayContaining([
      ['docker.io/library/alpine:3.20', undefined], ['docker.io/library/busybox:1.36', undefined], ['gcr.io/distroless/static:nonroot', undefined],
    ]));

    const dead = await deadUpstream();
    const mirror = await startMirror({ offline: true, tags: { ttlSeconds: 0 }, upstreams: { 'docker.io': { url: dead.url }, 'gcr.io': { url: dead.url } } }, { cacheDir: cache });
    try {
      await expectServed(mirror.url, 'library/alpine', '3.20', alpine);
      await expectServed(mirror.url, 'library/busybox', '1.36', busybox);
      await expectServed(mirror.url, 'gcr.io/distroless/static', 'nonroot', distroless);
      const missing = await get(`${mirror.url}/v2/library/nope/manifests/1`, { accept: ACCEPT_ALL });
      expect(missing.status).toBe(404);
      expect(missing.body.toString()).toMatch(/offline/);
      const missingBlob = await get(`${mirror.url}/v2/library/nope/blobs/${notWarmed.layers[0]!.digest}`);
      expect(missingBlob.status).toBe(404);
      expect(missingBlob.body.toString()).toMatch(/offline/);
      expect(dead.connections()).toBe(0);
    } finally {
      await mirror.close();
      await dead.close();
    }
  });

  it('is idempotent: a second import stores nothing new and changes no tag', async () => {
    const cache = path.join(work.dir, 'twice');
    const upstreams = { 'docker.io': 'http://127.0.0.1:9', 'gcr.io': 'http://127.0.0.1:9' };
    const first = await toolMirror(cache, upstreams);
    const one = await importFrom(first, archive()).finally(() => first.close());
    const second = await toolMirror(cache, upstreams);
    try {
      const two = await importFrom(second, archive());
      expect(two.failures).toEqual([]);
      expect(two.blobsStored).toBe(0);
      expect(two.blobsAlreadyPresent).toBe(one.blobsStored);
      expect(two.images.map((image) => image.tag)).toEqual(one.images.map((image) => image.tag));
      expect((await second.metadata.tags.get('docker.io/library/alpine', '3.20'))?.digest).toBe(alpine.manifest.digest);
    } finally {
      await second.close();
    }
  });

  it('rejects a corrupted blob: nothing is stored for it and the image it belongs to gets no tag', async () => {
    const entries = await readTar(archive());
    const victim = busybox.layers[0]!.digest;
    const corrupted = entries.map((entry) => entry.name === `blobs/sha256/${victim.slice(7)}`
      ? { ...entry, bytes: Buffer.from(entry.bytes.map((byte, index) => (index === 100 ? byte ^ 0xff : byte))) }
      : entry);
    // Blobs before index.json, as other tools order them.
    corrupted.sort((a, b) => Number(a.name === 'index.json') - Number(b.name === 'index.json'));
    const file = path.join(work.dir, 'corrupt.tar');
    await writeTar(file, corrupted);
    const cache = path.join(work.dir, 'corrupt-cache');
    const tool = await toolMirror(cache, { 'docker.io': 'http://127.0.0.1:9', 'gcr.io': 'http://127.0.0.1:9' });
    try {
      const result = await importFrom(tool, file);
      expect(result.failures).toEqual([expect.stringContaining(`blobs/sha256/${victim.slice(7)} is corrupt`)]);
      expect(await tool.content.stat(parseDigest(victim))).toBeUndefined();
      expect(existsSync(path.join(cache, 'blobs', 'sha256', victim.slice(7, 9), victim.slice(7)))).toBe(false);
      const tempFiles = (await readdir(path.join(cache, 'tmp'), { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
      expect(tempFiles).toEqual([]);
      const busyboxResult = result.images.find((image) => image.name === 'docker.io/library/busybox:1.36');
      expect(busyboxResult?.error).toMatch(/missing or corrupt/);
      expect(await tool.metadata.tags.get('docker.io/library/busybox', '1.36')).toBeUndefined();
      expect((await tool.metadata.tags.get('docker.io/library/alpine', '3.20'))?.digest).toBe(alpine.manifest.digest);
    } finally {
      await tool.close();
    }
  });
});

async function expectServed(mirrorUrl: string, name: string, tag: string, image: TestImage | TestIndex): Promise<void> {
  const top = await get(`${mirrorUrl}/v2/${name}/manifests/${tag}`, { accept: ACCEPT_ALL });
  expect(top.status, `${name}:${tag}`).toBe(200);
  expect(sha256(top.body)).toBe(image.manifest.digest);
  expect(top.headers['docker-content-digest']).toBe(image.manifest.digest);
  for (const one of image.kind === 'index' ? image.images : [image]) {
    const manifest = await get(`${mirrorUrl}/v2/${name}/manifests/${one.manifest.digest}`, { accept: ACCEPT_ALL });
    expect(sha256(manifest.body)).toBe(one.manifest.digest);
    for (const blob of [one.config, ...one.layers]) {
      const response = await get(`${mirrorUrl}/v2/${name}/blobs/${blob.digest}`);
      expect(response.status).toBe(200);
      expect(sha256(response.body)).toBe(blob.digest);
      expect((await head(`${mirrorUrl}/v2/${name}/blobs/${blob.digest}`)).headers['content-length']).toBe(String(blob.size));
    }
  }
}

/** An "upstream" that accepts TCP connections and never answers, counting them. */
async function deadUpstream(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const server: Server = createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, connections: () => count, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export { readFile, writeFile };
