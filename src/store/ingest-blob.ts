/**
 * Writes one blob into the cache: bytes go to a temp file while they are hashed; on commit the
 * size and digest are checked and an atomic rename publishes the file. On any failure the temp
 * file is removed, so a partial blob can never look complete (compare distribution's
 * registry/storage/blobwriter.go, which verifies before moving the upload into place).
 *
 * Readers may follow the temp file while it grows (see follow-file.ts): `written` only counts
 * bytes the kernel has accepted, and 'progress' / 'settled' tell them when to look again.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { open, rename, rm, mkdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createDigester, type Digest } from '../domain/digest.js';
import { UpstreamBadResponseError } from '../domain/errors.js';
import type { StorePaths } from './store-paths.js';

export type IngestState = 'writing' | 'committed' | 'failed';

/**
 * How temp files are opened. A seam for tests only: a disk that fills up (ENOSPC) cannot be
 * produced without root, so tests swap `open` for one whose handle fails its writes.
 */
export const ingestFiles = {
  open: (file: string, flags: string): Promise<FileHandle> => open(file, flags),
};

export class BlobIngest extends EventEmitter {
  written = 0;
  state: IngestState = 'writing';
  failure: Error | undefined;
  /** Where the bytes are now: the temp file, then the published blob. */
  currentPath: string;
  private readonly hash;

  private constructor(
    readonly digest: Digest,
    readonly expectedSize: number | undefined,
    readonly tempPath: string,
    readonly finalPath: string,
    private readonly handle: FileHandle,
  ) {
    super();
    this.setMaxListeners(0);
    this.currentPath = tempPath;
    this.hash = createDigester(digest.algorithm);
  }

  static async start(paths: StorePaths, digest: Digest, expectedSize?: number): Promise<BlobIngest> {
    const tempPath = paths.temp(`${digest.hex.slice(0, 16)}-${randomUUID()}`);
    await mkdir(path.dirname(tempPath), { recursive: true });
    const handle = await ingestFiles.open(tempPath, 'wx');
    return new BlobIngest(digest, expectedSize, tempPath, paths.blob(digest), handle);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'writing') throw this.failure ?? new Error('blob ingest already finished');
    if (this.expectedSize !== undefined && this.written + chunk.byteLength > this.expectedSize) {
      throw new UpstreamBadResponseError(`upstream sent more than the ${this.expectedSize} bytes announced for ${this.digest.value}`);
    }
    this.hash.update(chunk);
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.byteLength - offset, this.written + offset);
      offset += bytesWritten;
    }
    this.written += chunk.byteLength;
    this.emit('progress', this.written);
  }

  /** Verifies size and digest, then publishes the blob with an atomic rename. */
  async commit(): Promise<void> {
    const actual = `${this.digest.algorithm}:${this.hash.digest('hex')}`;
    if (this.expectedSize !== undefined && this.written !== this.expectedSize) {
      throw await this.fail(new UpstreamBadResponseError(`upstream sent ${this.written} of ${this.expectedSize} bytes for ${this.digest.value}`));
    }
    if (actual !== this.digest.value) {
      throw await this.fail(new UpstreamBadResponseError(`upstream bytes for ${this.digest.value} hash to ${actual}`));
    }
    await this.handle.close();
    await mkdir(path.dirname(this.finalPath), { recursive: true });
    await rename(this.tempPath, this.finalPath);
    this.currentPath = this.finalPath;
    this.state = 'committed';
    this.emit('settled');
  }

  /** Abandons the ingest: removes the temp file and wakes every reader with the error. */
  async fail(error: Error): Promise<Error> {
    if (this.state !== 'writing') return this.failure ?? error;
    this.state = 'failed';
    this.failure = error;
    this.emit('settled');
    await this.handle.close().catch(() => {});
    await rm(this.tempPath, { force: true }).catch(() => {});
    return error;
  }
}
