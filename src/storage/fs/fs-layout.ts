/**
 * Where the filesystem content store keeps everything under its root (`cache.dir`):
 *
 *   <cache.dir>/
 *   ├── blobs/sha256/ab/<hex>        content by digest, blobs and manifests alike; published by a
 *   │                                writer's commit (fsync, rename), immutable afterwards. The
 *   │                                layout of every release, so nginx X-Accel-Redirect keeps working
 *   ├── tmp/<pid>-<start time>/<id>  cache fills in progress, one directory per live process
 *   │                                (process-owner.ts); removed only once that process is gone
 *   ├── uploads/<id>                 resumable writers (upload sessions), any process may continue them
 *   ├── manifests/sha256/ab/<hex>    a cache written by an earlier release: moved into blobs/ at the
 *   │                                first start (legacy-manifests.ts), then gone
 *   └── metadata/                    the metadata store's files (metadata/open-metadata-store.ts)
 *
 * Paths are built only from parsed digests (fixed-length lower-case hex) and writer ids checked
 * against WRITER_ID, so no request can name a path outside the root. The two-character fan-out
 * keeps directories small.
 */
import path from 'node:path';
import type { Digest } from '../../domain/digest.js';

/** Writer ids are UUIDs; a resumed id from outside is checked against this before it becomes a path. */
export const WRITER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class FsLayout {
  readonly blobsDir: string;
  readonly tmpDir: string;
  readonly uploadsDir: string;
  readonly legacyManifestsDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs');
    this.tmpDir = path.join(root, 'tmp');
    this.uploadsDir = path.join(root, 'uploads');
    this.legacyManifestsDir = path.join(root, 'manifests');
  }

  content(digest: Digest): string {
    return path.join(this.blobsDir, this.relativeContentPath(digest));
  }

  /** The content's path under `blobsDir`, '/'-separated whatever the platform (nginx appends it to its location). */
  relativeContentPath(digest: Digest): string {
    return `${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
  }

  processTempDir(ownerName: string): string {
    return path.join(this.tmpDir, ownerName);
  }

  upload(id: string): string {
    return path.join(this.uploadsDir, id);
  }
}
