/**
 * Issue 13 item 3 and issue 12 item 9, in process: tags are written in batches (one setMany per
 * TAG_BATCH tags, never tag by tag); index.json is read as a stream, so one larger than the
 * earlier 64 MiB cap imports; a malformed index.json changes no tag, even when its first
 * entries are good; and an archive re-points a tag the cache has only when told to (`retag`).
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { importOciArchive } from '../../src/airgap/import-archive.js';
import { TAG_BATCH } from '../../src/airgap/import-tags.js';
import type { Mirror } from '../../src/compose.js';
import { ManifestInvalidError } from '../../src/domain/errors.js';
import { makeImage } from '../helpers/test-images.js';
import { tempDir, toolMirror } from './airgap-fixture.js';
import { blobsOf, indexJsonOf, writeLayoutArchive } from './crafted-archives.js';

const image = makeImage({ layers: [3_000], seed: 'scale-a' });
const other = makeImage({ layers: [2_000], seed: 'scale-b' });

let sandbox: { dir: string; remove: () => Promise<void> };
let mirror: Mirror;
beforeEach(async () => {
  sandbox = await tempDir('mirror-import-scale-');
  mirror = await toolMirror(path.join(sandbox.dir, 'cache'), { 'docker.io': 'http://127.0.0.1:9' });
});
afterEach(async () => {
  await mirror.close();
  await sandbox.remove();
});

const archive = (name: string) => path.join(sandbox.dir, name);

describe('import at scale', () => {
  it('writes tags in batches through tags.setMany, one call per batch, never one by one', async () => {
    const count = 2 * TAG_BATCH + 500;
    const entries = Array.from({ length: count }, (_, i) => ({ image, refName: `docker.io/scale/repo-${i % 25}:t${i}` }));
    await writeLayoutArchive(archive('many.tar'), indexJsonOf(entries), blobsOf([image]));
    const setMany = vi.spyOn(mirror.metadata.tags, 'setMany');
    const set = vi.spyOn(mirror.metadata.tags, 'set');
    const result = await importOciArchive(createReadStream(archive('many.tar')), mirror);
    expect(result.failedCount).toBe(0);
    expect(result.imageCount).toBe(count);
    expect(result.tagsRestored).toBe(count);
    expect(setMany.mock.calls.map(([batch]) => batch.length)).toEqual([TAG_BATCH, TAG_BATCH, 500]);
    expect(set).not.toHaveBeenCalled();
    expect(await mirror.metadata.tags.count()).toEqual({ tags: count, repositories: 25 });
    expect((await mirror.metadata.tags.get('docker.io/scale/repo-7', 't2407'))?.digest).toBe(image.manifest.digest);
    // The report lists a bounded number of images and counts the rest.
    expect(result.images.length).toBeLessThanOrEqual(1_000);
  });

  it('reads an index.json larger than the earlier 64 MiB cap', async () => {
    const entries = Array.from({ length: 1_100 }, (_, i) => ({ image, refName: `docker.io/big/index:t${i}`, padding: 64 * 1024 }));
    const index = indexJsonOf(entries);
    expect(index.length).toBeGreaterThan(64 * 1024 * 1024);
    await writeLayoutArchive(archive('big-index.tar'), index, blobsOf([image]), { indexLast: true });
    const result = await importOciArchive(createReadStream(archive('big-index.tar')), mirror);
    expect(result.failures).toEqual([]);
    expect(result.tagsRestored).toBe(1_100);
    expect((await mirror.metadata.tags.get('docker.io/big/index', 't1099'))?.digest).toBe(image.manifest.digest);
  }, 120_000);

  it('changes no tag when index.json turns out malformed after good entries', async () => {
    const good = indexJsonOf([{ image, refName: 'docker.io/library/good:1' }]).toString();
    const broken = Buffer.from(good.replace(/\]\}$/, ',{"digest":7}]}'));
    await writeLayoutArchive(archive('broken.tar'), broken, blobsOf([image]));
    await expect(importOciArchive(createReadStream(archive('broken.tar')), mirror)).rejects.toThrow(ManifestInvalidError);
    expect(await mirror.metadata.tags.get('docker.io/library/good', '1')).toBeUndefined();
  });
});

describe('re-pointing a tag the cache has', () => {
  async function importTag(name: string, which: typeof image, retag = false) {
    await writeLayoutArchive(archive(name), indexJsonOf([{ image: which, refName: 'docker.io/library/app:1.0' }, { image: which, refName: `docker.io/library/app:${name}` }]), blobsOf([which]));
    return importOciArchive(createReadStream(archive(name)), mirror, { retag });
  }

  it('is refused without retag: the tag keeps its content, the image reports why and the rest is imported', async () => {
    await importTag('first', image);
    const result = await importTag('second', other);
    const refused = result.images.find((entry) => entry.name === 'docker.io/library/app:1.0');
    expect(refused?.error).toMatch(/points to sha256:[0-9a-f]{64} in the cache, the archive has sha256:[0-9a-f]{64}.*--retag/);
    expect(result.failedCount).toBe(1);
    expect((await mirror.metadata.tags.get('docker.io/library/app', '1.0'))?.digest).toBe(image.manifest.digest);
    // Its content is stored and its other, new tag restored.
    expect((await mirror.metadata.tags.get('docker.io/library/app', 'second'))?.digest).toBe(other.manifest.digest);
    expect(await mirror.manifests.read((await import('../../src/domain/digest.js')).parseDigest(other.manifest.digest))).toBeDefined();
  });

  it('is done with retag', async () => {
    await importTag('first', image);
    const result = await importTag('second', other, true);
    expect(result.failedCount).toBe(0);
    expect((await mirror.metadata.tags.get('docker.io/library/app', '1.0'))?.digest).toBe(other.manifest.digest);
  });

  it('an archive naming one tag twice with different content re-points it only with retag', async () => {
    const entries = [{ image, refName: 'docker.io/library/twice:1' }, { image: other, refName: 'docker.io/library/twice:1' }];
    await writeLayoutArchive(archive('twice.tar'), indexJsonOf(entries), blobsOf([image, other]));
    const result = await importOciArchive(createReadStream(archive('twice.tar')), mirror);
    expect(result.failedCount).toBe(1);
    expect((await mirror.metadata.tags.get('docker.io/library/twice', '1'))?.digest).toBe(image.manifest.digest);
    const again = await importOciArchive(createReadStream(archive('twice.tar')), mirror, { retag: true });
    expect(again.failedCount).toBe(0);
    expect((await mirror.metadata.tags.get('docker.io/library/twice', '1'))?.digest).toBe(other.manifest.digest);
  });
});
