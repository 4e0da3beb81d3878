/**
 * Where everything lives under `cache.dir`:
 *
 *   <cache.dir>/
 *   ├── blobs/sha256/ab/<hex>          published blobs; immutable once renamed into place
 *   ├── manifests/sha256/ab/<hex>      manifest bytes exactly as the upstream sent them
 *   │                   └── <hex>.type its media type, written before the manifest is published
 *   ├── sources/sha256/ab/<hex>        repositories the digest came through (content-sources.ts)
 *   ├── tmp/<random>.part              downloads in progress; anything left here at start-up
 *   │                                  is a crash leftover and is removed
 *   └── metadata/tags.json             tag index (metadata.store "file")
 *
 * Paths are built only from parsed digests (fixed-length lower-case hex), so no request can
 * name a path outside the cache directory. The two-character fan-out keeps directories small.
 */
import path from 'node:path';
import type { Digest } from '../domain/digest.js';

export class StorePaths {
  readonly blobsDir: string;
  readonly manifestsDir: string;
  readonly tmpDir: string;
  readonly metadataDir: string;
  readonly sourcesDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.manifestsDir = path.join(root, 'manifests');
    this.tmpDir = path.join(root, 'tmp');
    this.metadataDir = path.join(root, 'metadata');
    this.sourcesDir = path.join(root, 'sources');
  }

  blob(digest: Digest): string {
    return path.join(this.blobsDir, this.blobUnderBlobsDir(digest));
  }

  /**
   * The blob's path under `blobsDir`, '/'-separated whatever the platform (what nginx appends
   * to its internal location in accel mode). Built from a parsed digest, so it has no `..`.
   */
  blobUnderBlobsDir(digest: Digest): string {
    return `${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
  }

  manifest(digest: Digest): string {
    return path.join(this.manifestsDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  manifestType(digest: Digest): string {
    return `${this.manifest(digest)}.type`;
  }

  sources(digest: Digest): string {
    return path.join(this.sourcesDir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }

  temp(name: string): string {
    return path.join(this.tmpDir, `${name}.part`);
  }
}
