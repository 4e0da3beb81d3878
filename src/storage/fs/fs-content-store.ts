/**
 * The content store on the local disk (the default): content by digest under `blobs/`, in the
 * layout every release has used (fs-layout.ts), sent by sendfile(2), a user-space copy or nginx
 * X-Accel-Redirect (the HTTP layer picks). Several processes may share one root: each writes
 * its cache fills into a temp directory of its own and removes only what no live process owns.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { isDigest, parseDigest, type Digest } from '../../domain/digest.js';
import { BadRequestError } from '../../domain/errors.js';
import type { BlobBody, ContentStore, ContentWriter, OpenOptions, StoredContent, WriterOptions } from '../content-store.js';
import { FsLayout, WRITER_ID } from './fs-layout.js';
import { FsWriter } from './fs-writer.js';
import { currentProcess, ownerName } from './process-owner.js';
import { sweepTempFiles } from './temp-sweep.js';

export class FsContentStore implements ContentStore {
  readonly layout: FsLayout;
  readonly #ownTempDir: string;
  readonly #contentPath = (digest: Digest) => this.layout.content(digest);

  private constructor(root: string, ownName: string) {
    this.layout = new FsLayout(root);
    this.#ownTempDir = this.layout.processTempDir(ownName);
  }

  /** Creates the layout, and removes temp files left by processes that are gone. */
  static async open(root: string): Promise<FsContentStore> {
    const ownName = ownerName(currentProcess());
    const store = new FsContentStore(root, ownName);
    await Promise.all([store.layout.blobsDir, store.layout.uploadsDir, store.#ownTempDir].map((dir) => mkdir(dir, { recursive: true })));
    await sweepTempFiles(store.layout.tmpDir, ownName);
    return store;
  }

  async stat(digest: Digest): Promise<StoredContent | undefined> {
    const info = await statFile(this.layout.content(digest));
    return info && { digest, size: info.size };
  }

  /** A file body; the sender applies the range. With `knownSize` no syscall is made at all. */
  async open(digest: Digest, options: OpenOptions = {}): Promise<BlobBody | undefined> {
    const size = options.knownSize ?? (await statFile(this.layout.content(digest)))?.size;
    if (size === undefined) return undefined;
    return { kind: 'file', size, path: this.layout.content(digest), relativePath: this.layout.relativeContentPath(digest) };
  }

  async read(digest: Digest): Promise<Buffer | undefined> {
    return readFile(this.layout.content(digest)).catch(undefinedIfMissing);
  }

  async writer(options: WriterOptions = {}): Promise<ContentWriter> {
    if (options.resumeId !== undefined) {
      if (!WRITER_ID.test(options.resumeId)) throw new BadRequestError(`no writer ${JSON.stringify(options.resumeId.slice(0, 64))}`);
      return FsWriter.resume(options.resumeId, this.layout.upload(options.resumeId), this.#contentPath);
    }
    const id = randomUUID();
    const file = options.resumable ? this.layout.upload(id) : path.join(this.#ownTempDir, id);
    return FsWriter.create(id, file, this.#contentPath);
  }

  async delete(digest: Digest): Promise<void> {
    await rm(this.layout.content(digest), { force: true });
  }

  async *list(): AsyncIterable<StoredContent> {
    for (const algorithm of await listDir(this.layout.blobsDir)) {
      for (const fanout of await listDir(path.join(this.layout.blobsDir, algorithm))) {
        const dir = path.join(this.layout.blobsDir, algorithm, fanout);
        const names = (await listDir(dir)).filter((name) => isDigest(`${algorithm}:${name}`));
        const infos = await Promise.all(names.map((name) => statFile(path.join(dir, name))));
        for (const [index, name] of names.entries()) {
          const info = infos[index];
          if (info?.isFile()) yield { digest: parseDigest(`${algorithm}:${name}`), size: info.size, modifiedAt: info.mtimeMs };
        }
      }
    }
  }

  async expireWriters(before: number): Promise<string[]> {
    const expired: string[] = [];
    for (const id of (await listDir(this.layout.uploadsDir)).filter((name) => WRITER_ID.test(name))) {
      const info = await statFile(this.layout.upload(id));
      if (!info || info.mtimeMs >= before) continue;
      await rm(this.layout.upload(id), { force: true });
      expired.push(id);
    }
    return expired;
  }

  /** Removes this process's temp directory: its fills have finished or been abandoned. */
  async close(): Promise<void> {
    await rm(this.#ownTempDir, { recursive: true, force: true });
  }
}

async function statFile(file: string) {
  return stat(file).catch(undefinedIfMissing);
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

function undefinedIfMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}
