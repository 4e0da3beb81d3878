import { describe, expect, it } from 'vitest';
import { sha256 } from './http.js';
import { MEDIA_TYPES, makeImage, makeIndex, seededBytes } from './test-images.js';

describe('test images', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = makeImage({ layers: [100, 200], seed: 1 });
    const again = makeImage({ layers: [100, 200], seed: 1 });
    const other = makeImage({ layers: [100, 200], seed: 2 });
    expect(again.manifest.digest).toBe(a.manifest.digest);
    expect(other.manifest.digest).not.toBe(a.manifest.digest);
    expect(a.layers[0]!.digest).not.toBe(a.layers[1]!.digest);
    expect(a.layers.map((layer) => layer.size)).toEqual([100, 200]);
  });

  it('builds manifests whose descriptors match the blobs', () => {
    const image = makeImage({ layers: [10, 0], seed: 's', mediaTypes: 'docker' });
    const manifest = JSON.parse(image.manifest.bytes.toString());
    expect(manifest.mediaType).toBe(MEDIA_TYPES.docker.manifest);
    expect(manifest.config).toEqual({ mediaType: MEDIA_TYPES.docker.config, digest: sha256(image.config.bytes), size: image.config.size });
    expect(manifest.layers[1]).toEqual({ mediaType: MEDIA_TYPES.docker.layer, digest: sha256(Buffer.alloc(0)), size: 0 });
    expect(image.manifest.digest).toBe(sha256(image.manifest.bytes));
    expect(() => makeImage({ layers: [], seed: 1, mediaTypes: 'docker', artifactType: 'x/y' })).toThrow(/OCI/);
  });

  it('builds an OCI index with platforms', () => {
    const amd = makeImage({ layers: [1], seed: 1 });
    const arm = makeImage({ layers: [1], seed: 2, platform: { architecture: 'arm64', os: 'linux' } });
    const index = JSON.parse(makeIndex([amd, arm]).manifest.bytes.toString());
    expect(index.mediaType).toBe(MEDIA_TYPES.oci.index);
    expect(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(index.manifests[1].digest).toBe(arm.manifest.digest);
  });

  it('fills a 50 MB layer with non-repeating bytes', () => {
    const bytes = seededBytes(50 * 1024 * 1024, 'big');
    expect(bytes.length).toBe(50 * 1024 * 1024);
    expect(bytes.subarray(0, 4096).equals(bytes.subarray(4096, 8192))).toBe(false);
    expect(seededBytes(64, 'big').equals(bytes.subarray(0, 64))).toBe(true);
  });
});
