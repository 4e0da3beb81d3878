/**
 * A cache written by an earlier release keeps manifests in `manifests/<alg>/<2 hex>/<hex>` with
 * a `.type` file beside each. At first start they move into the content store and the manifest
 * index: nothing lost, crash-safe (a second run finishes what a first one left), idempotent.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/domain/digest.js';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import { FsContentStore } from '../../src/storage/fs/fs-content-store.js';
import { migrateLegacyManifests } from '../../src/storage/fs/legacy-manifests.js';
import { ManifestStore } from '../../src/storage/manifest-store.js';
import { makeImage } from '../helpers/test-images.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'legacy-'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function writeLegacy(bytes: Buffer, mediaType: string | undefined, name = digestOf(bytes).hex): Promise<string> {
  const dir = path.join(root, 'manifests', 'sha256', name.slice(0, 2));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, name), bytes);
  if (mediaType !== undefined) await writeFile(path.join(dir, `${name}.type`), `${mediaType}\n`);
  return path.join(dir, name);
}

describe('manifests of an earlier release', () => {
  it('move into the content store and the manifest index, byte-exact with their media type', async () => {
    const image = makeImage({ layers: [100], seed: 'legacy', mediaTypes: 'docker' });
    const withoutType = makeImage({ layers: [100], seed: 'legacy-untyped' });
    await writeLegacy(image.manifest.bytes, image.manifest.mediaType);
    await writeLegacy(withoutType.manifest.bytes, undefined);
    const corrupt = await writeLegacy(Buffer.from('{"schemaVersion":2}'), 'application/vnd.oci.image.manifest.v1+json', digestOf(Buffer.from('other')).hex);
    await writeFile(`${corrupt}.0b7f.tmp`, 'interrupted');
    const content = await FsContentStore.open(root);
    const metadata = new MemoryMetadataStore();
    const manifests = new ManifestStore(content, metadata.manifests);

    const result = await migrateLegacyManifests(path.join(root, 'manifests'), manifests);
    expect(result).toEqual({ moved: 2, dropped: [digestOf(Buffer.from('other')).value] });
    expect(existsSync(path.join(root, 'manifests'))).toBe(false);
    const fresh = new ManifestStore(content, metadata.manifests);
    const moved = await fresh.read(digestOf(image.manifest.bytes));
    expect(moved?.mediaType).toBe(image.manifest.mediaType);
    expect(moved?.bytes.equals(image.manifest.bytes)).toBe(true);
    expect((await fresh.read(digestOf(withoutType.manifest.bytes)))?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect((await metadata.manifests.get(image.manifest.digest))?.references).toEqual([image.config.digest, image.layers[0]!.digest]);
    await content.close();
  });

  it('a run interrupted half-way is finished by the next, and a finished one changes nothing', async () => {
    const first = makeImage({ layers: [10], seed: 'legacy-a' });
    const second = makeImage({ layers: [10], seed: 'legacy-b' });
    await writeLegacy(first.manifest.bytes, first.manifest.mediaType);
    const content = await FsContentStore.open(root);
    const metadata = new MemoryMetadataStore();
    const manifests = new ManifestStore(content, metadata.manifests);
    await migrateLegacyManifests(path.join(root, 'manifests'), manifests);
    // As if the first run had stopped before it removed this one's files.
    await writeLegacy(first.manifest.bytes, first.manifest.mediaType);
    await writeLegacy(second.manifest.bytes, second.manifest.mediaType);
    expect(await migrateLegacyManifests(path.join(root, 'manifests'), manifests)).toEqual({ moved: 2, dropped: [] });
    expect(await migrateLegacyManifests(path.join(root, 'manifests'), manifests)).toEqual({ moved: 0, dropped: [] });
    const records = [];
    for await (const record of metadata.manifests.entries()) records.push(record.digest);
    expect(records.sort()).toEqual([first.manifest.digest, second.manifest.digest].sort());
    await content.close();
  });
});
