/**
 * Issue 12 item 2: a repository becomes a source of a digest only after the upstream confirmed
 * that the repository serves it (a 200 for that name, or a verified fill through it). An
 * anonymous request for a private layer under a public name, answered 404 by the upstream, must
 * leave nothing behind that later serves the layer once it is cached through the private
 * repository: in every order of events (plant then warm, warm then plant, import, concurrent
 * fills) the anonymous client gets 404 and the private bytes never.
 *
 * Upstream: bearer tokens, `testuser/` private, user alice. Mirror: alice's credentials, no
 * client auth. "Warm" is the mirror itself filling through the private repository, as
 * `registry-mirror warm` does with the mirror's credentials.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeTar } from '../airgap/airgap-fixture.js';
import { importFrom, toolMirror } from '../airgap/airgap-fixture.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { fillThrough as fillThroughRepository } from '../helpers/fill-through.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { startMirror, type MirrorUnderTest, type RawConfig } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestBlob, type TestImage } from '../helpers/test-images.js';
import { tempDir, type TempDir } from './security-fixture.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';

let dir: TempDir;
let upstream: FakeRegistry;
let upstreams: RawConfig['upstreams'];
const publicImage = makeImage({ layers: [3000], seed: 'sources-public' });
let mirror: MirrorUnderTest | undefined;
let caseNumber = 0;

beforeAll(async () => {
  dir = await tempDir('mirror-sources-');
  upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
  pushImage(upstream, PUBLIC, 'latest', publicImage);
  upstreams = { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } };
});
afterEach(async () => {
  upstream.setFault('blob', null);
  await mirror?.stop();
  mirror = undefined;
});
afterAll(async () => {
  await upstream?.close();
  await dir?.remove();
});

/** A fresh private image (its own layer) pushed to the private repository only, and a fresh cache. */
function privateCase(): { image: TestImage; layer: TestBlob; cacheDir: string } {
  caseNumber += 1;
  const image = makeImage({ layers: [7000 + caseNumber], seed: `sources-private-${caseNumber}` });
  pushImage(upstream, PRIVATE, `v${caseNumber}`, image);
  return { image, layer: image.layers[0]!, cacheDir: dir.file(`cache-${caseNumber}`) };
}

async function anonymousMirror(cacheDir: string): Promise<MirrorUnderTest> {
  mirror = await startMirror({ upstreams }, { cacheDir });
  // The public repository's verdict is known (readable): content checks come next.
  expect((await get(`${mirror.url}/v2/${PUBLIC}/manifests/latest`, { accept: publicImage.manifest.mediaType })).status).toBe(200);
  return mirror;
}

async function restart(current: MirrorUnderTest): Promise<MirrorUnderTest> {
  await current.stop();
  mirror = await startMirror({ upstreams }, { cacheDir: current.cacheDir });
  return mirror;
}

/** The mirror fills `digest` through `repository` with its own credentials, as warm does, and reads it whole. */
function fillThrough(target: MirrorUnderTest, repository: string, digest: string): Promise<Buffer> {
  return fillThroughRepository(target.mirror, repository, digest);
}

async function expectRefused(target: MirrorUnderTest, layer: TestBlob): Promise<void> {
  const response = await get(`${target.url}/v2/${PUBLIC}/blobs/${layer.digest}`);
  expect(response.status).toBe(404);
  expect(JSON.parse(response.body.toString()).errors[0].code).toBe('BLOB_UNKNOWN');
  expect(response.body.includes(layer.bytes.subarray(0, 64))).toBe(false);
}

describe('where a private layer may be served from', () => {
  it('plant then warm: the 404 through the public name leaves no record that serves the layer later', async () => {
    const { layer, cacheDir } = privateCase();
    const served = await anonymousMirror(cacheDir);
    await expectRefused(served, layer);
    // Content never fetched leaves no record at all.
    expect(await served.mirror.metadata.links.repositories(layer.digest, 10)).toEqual([]);
    expect(sha256(await fillThrough(served, PRIVATE, layer.digest))).toBe(layer.digest);
    expect(await served.mirror.metadata.links.repositories(layer.digest, 10)).toEqual([`docker.io/${PRIVATE}`]);
    await expectRefused(served, layer);
    await expectRefused(await restart(served), layer);
  });

  it('warm then plant: refused before and after a restart', async () => {
    const { layer, cacheDir } = privateCase();
    const served = await anonymousMirror(cacheDir);
    expect(sha256(await fillThrough(served, PRIVATE, layer.digest))).toBe(layer.digest);
    await expectRefused(served, layer);
    await expectRefused(await restart(served), layer);
  });

  it('import: a private image imported after the plant is not served under the public name', async () => {
    const { image, layer, cacheDir } = privateCase();
    const served = await anonymousMirror(cacheDir);
    await expectRefused(served, layer);
    await served.stop();
    mirror = undefined;
    const archive = dir.file(`private-${caseNumber}.tar`);
    await writeTar(archive, ociLayout(image, `docker.io/${PRIVATE}:v${caseNumber}`));
    const tool = await toolMirror(cacheDir, { 'docker.io': upstream.url }, { offline: true });
    try {
      const result = await importFrom(tool, archive);
      expect(result.failures).toEqual([]);
    } finally {
      await tool.close();
    }
    mirror = await startMirror({ upstreams }, { cacheDir });
    await expectRefused(mirror, layer);
  });

  it('concurrent fills: an anonymous request during a fill through the private repository is refused, and after it', async () => {
    const { layer, cacheDir } = privateCase();
    const served = await anonymousMirror(cacheDir);
    upstream.setFault('blob', { mode: 'slow', bytesPerSecond: 4096, times: 1 });
    const warming = fillThrough(served, PRIVATE, layer.digest);
    await waitFor(() => upstream.count({ method: 'GET', pathIncludes: layer.digest }) > 0, 10_000, 'the private fill to start');
    await expectRefused(served, layer);
    expect(sha256(await warming)).toBe(layer.digest);
    await expectRefused(served, layer);
  });

  it('concurrent fills, the other way round: a fill through the private repository while the anonymous 404 is under way', async () => {
    const { layer, cacheDir } = privateCase();
    const served = await anonymousMirror(cacheDir);
    const [planted, warmed] = await Promise.all([
      get(`${served.url}/v2/${PUBLIC}/blobs/${layer.digest}`),
      fillThrough(served, PRIVATE, layer.digest).catch((error: Error) => error),
    ]);
    expect(planted.body.includes(layer.bytes.subarray(0, 64))).toBe(false);
    if (!(warmed instanceof Error)) expect(sha256(warmed)).toBe(layer.digest);
    if (warmed instanceof Error) expect(sha256(await fillThrough(served, PRIVATE, layer.digest))).toBe(layer.digest);
    await expectRefused(served, layer);
    await expectRefused(await restart(served), layer);
  });
});

/** An OCI image layout (tar entries) holding `image`, its ref.name annotation `refName`. */
function ociLayout(image: TestImage, refName: string): Array<{ name: string; bytes: Buffer }> {
  const index = { schemaVersion: 2, manifests: [{ mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size, annotations: { 'org.opencontainers.image.ref.name': refName } }] };
  const blob = (entry: TestBlob) => ({ name: `blobs/sha256/${entry.digest.slice(7)}`, bytes: entry.bytes });
  return [
    { name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) },
    blob(image.manifest), blob(image.config), ...image.layers.map(blob),
  ];
}
