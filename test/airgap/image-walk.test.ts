/**
 * walkImage (src/airgap/image-walk.ts), the walk of an image that import, export and warm share:
 * an index that lists one child many times asks its source for that child once. A small archive
 * whose index listed one 4 MB manifest 18,000 times kept `import` busy for minutes, reading and
 * parsing the same manifest again for every entry (stop 32, an attack on import).
 */
import { describe, expect, it } from 'vitest';
import { walkImage } from '../../src/airgap/image-walk.js';
import type { StoredManifest } from '../../src/storage/manifest-store.js';
import { sha256 } from '../helpers/http.js';
import { MEDIA_TYPES, makeImage } from '../helpers/test-images.js';

const image = makeImage({ layers: [100, 200], seed: 'walk-repeats' });
const child = { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size, platform: { os: 'linux', architecture: 'amd64' } };
const missing = { ...child, digest: sha256(Buffer.from('not in the archive')) };

function indexListing(entries: object[]): StoredManifest {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.oci.index, manifests: entries }));
  return { digest: sha256(bytes), mediaType: MEDIA_TYPES.oci.index, bytes };
}

describe('walkImage', () => {
  it('asks for a child listed 1,000 times once, and lists its blobs and platform once', async () => {
    const asked: string[] = [];
    const source = async (descriptor: { digest: string }) => {
      asked.push(descriptor.digest);
      return descriptor.digest === image.manifest.digest ? { digest: image.manifest.digest, mediaType: image.manifest.mediaType, bytes: image.manifest.bytes } : undefined;
    };
    const contents = await walkImage(indexListing([...Array(1_000).fill(child), ...Array(1_000).fill(missing)]), source);
    expect(asked).toEqual([image.manifest.digest, missing.digest]);
    expect(contents.manifests.map((manifest) => manifest.digest).slice(1)).toEqual([image.manifest.digest]);
    expect(contents.blobs.map((blob) => blob.digest)).toEqual([image.config.digest, ...image.layers.map((layer) => layer.digest)]);
    expect(contents.platforms).toEqual(['linux/amd64']);
    expect(contents.missing.map((entry) => entry.digest)).toEqual([missing.digest]);
  });
});
