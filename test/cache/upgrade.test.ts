/**
 * Issue 13, "a cache filled by today's release serves the same images after the upgrade with
 * zero upstream requests": a cache directory laid out as the earlier release wrote it (blobs/,
 * manifests/ with `.type` files, metadata/*.json, a stale temp file, sources/) is upgraded at the
 * first start and serves its image without asking the upstream. The layout is written here from
 * the format; the earlier release's code is gone.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDigest } from '../../src/domain/digest.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage, type TestBlob } from '../helpers/test-images.js';
import { writeNamespaceFile, writeSourcesFile } from '../metadata/legacy-cache-fixture.js';
import { tempDir, type TempDir } from '../security/security-fixture.js';
import { pullImage } from './cache-fixture.js';

const REPO = 'library/alpine';

let dir: TempDir | undefined;
let fake: FakeRegistry | undefined;
let mirror: MirrorUnderTest | undefined;
afterEach(async () => {
  await mirror?.stop();
  await fake?.close();
  await dir?.remove();
  mirror = fake = dir = undefined;
});

async function writeFileAt(root: string, dirName: string, digest: string, bytes: Buffer | string): Promise<string> {
  const hex = digest.slice('sha256:'.length);
  const file = path.join(root, dirName, 'sha256', hex.slice(0, 2), hex);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return file;
}

describe('a cache written by the earlier release', () => {
  it('serves its images after the upgrade with zero upstream requests', async () => {
    dir = await tempDir('mirror-upgrade-');
    fake = await startFakeRegistry();
    const image = makeImage({ layers: [40_000, 9_000], seed: 'upgrade', mediaTypes: 'docker' });
    pushImage(fake, REPO, '3.20', image);
    const cacheDir = dir.file('cache');
    const longAgo = new Date(Date.now() - 86_400_000);
    for (const blob of [image.config, ...image.layers] as TestBlob[]) {
      await utimes(await writeFileAt(cacheDir, 'blobs', blob.digest, blob.bytes), longAgo, longAgo);
    }
    const manifestFile = await writeFileAt(cacheDir, 'manifests', image.manifest.digest, image.manifest.bytes);
    await writeFile(`${manifestFile}.type`, image.manifest.mediaType);
    const record = { digest: image.manifest.digest, mediaType: image.manifest.mediaType, size: image.manifest.size, checkedAt: Date.now() };
    await writeNamespaceFile(cacheDir, 'tags', [{ key: `docker.io/${REPO}:3.20`, value: record }]);
    await writeNamespaceFile(cacheDir, 'repositories', [{ key: `docker.io/${REPO}`, value: ['3.20'] }, { key: '*catalog', value: [`docker.io/${REPO}`] }]);
    // A record the earlier release may have written before the upstream said 404: never imported.
    await writeSourcesFile(cacheDir, image.layers[0]!.digest, JSON.stringify([`docker.io/${REPO}`, 'docker.io/library/other']));
    await mkdir(path.join(cacheDir, 'tmp'), { recursive: true });
    await writeFile(path.join(cacheDir, 'tmp', 'abc-0123.part'), 'crashed download');
    await utimes(path.join(cacheDir, 'tmp', 'abc-0123.part'), longAgo, longAgo);

    mirror = await startMirror({ upstreams: { 'docker.io': { url: fake.url } } }, { cacheDir });
    fake.resetCounts();
    await pullImage(mirror.url, REPO, '3.20', image);
    expect(fake.requests).toHaveLength(0);

    const { metadata, budget } = mirror.mirror;
    await budget.idle();
    expect(existsSync(path.join(cacheDir, 'manifests'))).toBe(false);
    expect((await metadata.manifests.get(image.manifest.digest))?.mediaType).toBe(image.manifest.mediaType);
    expect((await metadata.tags.get(`docker.io/${REPO}`, '3.20'))?.digest).toBe(image.manifest.digest);
    expect(budget.count).toBe(3);
    expect(await metadata.links.repositories(image.layers[0]!.digest, 10)).toEqual([]);
    expect((await readdir(cacheDir)).some((name) => name.startsWith('sources.untrusted-'))).toBe(true);
    expect(await readdir(path.join(cacheDir, 'tmp'), { recursive: true })).toEqual([expect.stringMatching(/^[0-9]+-[0-9x]+$/)]);
    expect(await mirror.mirror.content.stat(parseDigest(image.manifest.digest))).toMatchObject({ size: image.manifest.size });
  });
});
