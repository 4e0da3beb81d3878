/**
 * The read side of the content-addressed blob files, and the housekeeping around them
 * (start-up clean-up, listing for the eviction index, deletion).
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { isDigest, parseDigest, type Digest } from '../domain/digest.js';
import type { StorePaths } from './store-paths.js';

/** Large reads keep the number of syscalls and chunks per response low on the warm path. */
const READ_CHUNK_BYTES = 1024 * 1024;

export interface StoredBlob {
  digest: Digest;
  size: number;
  /** Last use, as recorded in the file's mtime (see touch()). */
  usedAtMs: number;
}

export class BlobStore {
  constructor(readonly paths: StorePaths) {}

  /**
   * Creates the layout and removes temp files left behind by a crash. A second process on the
   * same cache (warm, import beside a running server) passes `clearTemp: false`: the temp files
   * may be the server's downloads in progress.
   */
  async init(options: { clearTemp?: boolean } = {}): Promise<void> {
    if (options.clearTemp ?? true) await rm(this.paths.tmpDir, { recursive: true, force: true });
    await Promise.all([this.paths.blobsDir, this.paths.manifestsDir, this.paths.tmpDir].map((dir) => mkdir(dir, { recursive: true })));
  }

  async size(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.paths.blob(digest))).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** Bytes [start, end] (inclusive) of a published blob. */
  read(digest: Digest, start: number, end: number): Readable {
    return createReadStream(this.paths.blob(digest), { start, end, highWaterMark: READ_CHUNK_BYTES });
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.paths.blob(digest), { force: true });
  }

  /** Records a use in the file's mtime, so recency survives restarts (atime is often off). */
  async touch(digest: Digest, atMs = Date.now()): Promise<void> {
    const when = new Date(atMs);
    await utimes(this.paths.blob(digest), when, when).catch(() => {});
  }

  /** Every published blob with its size and last use. */
  async *list(): AsyncGenerator<StoredBlob> {
    for (const algorithm of await listDir(this.paths.blobsDir)) {
      for (const fanout of await listDir(path.join(this.paths.blobsDir, algorithm))) {
        const dir = path.join(this.paths.blobsDir, algorithm, fanout);
        const entries = await listDir(dir);
        const stats = await Promise.all(entries.map((name) => stat(path.join(dir, name)).catch(() => undefined)));
        for (const [index, name] of entries.entries()) {
          const info = stats[index];
          const text = `${algorithm}:${name}`;
          if (!info?.isFile() || !isDigest(text)) continue;
          yield { digest: parseDigest(text), size: info.size, usedAtMs: info.mtimeMs };
        }
      }
    }
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
