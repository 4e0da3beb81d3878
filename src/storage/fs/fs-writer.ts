/**
 * One content-store writer on the local disk: bytes go to a file of their own while they are
 * hashed; the commit checks size and digest, fsyncs the file, renames it into `blobs/` and
 * fsyncs that directory, so a power cut never leaves a published name on missing bytes (issue
 * 12 item 9). On a mismatch or a cancel the file is removed: nothing partial is ever published
 * (compare distribution's registry/storage/blobwriter.go, which verifies before the move).
 *
 * Readers may follow the file while it grows (fs-growing-file.ts): `written` counts only bytes
 * the kernel accepted, and 'progress' / 'settled' tell them when to look again.
 *
 * Bytes are hashed with sha256 as they come, since the digest is known only at the commit; a
 * commit under another algorithm re-reads the file.
 */
import { EventEmitter } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createDigester, type Digest } from '../../domain/digest.js';
import { DigestInvalidError, SizeInvalidError } from '../../domain/errors.js';
import type { ContentWriter, GrowingFile, StoredContent } from '../content-store.js';
import { fsGrowingFile } from './fs-growing-file.js';

export type WriterState = 'writing' | 'committed' | 'failed';

/**
 * How writer files are opened. A seam for tests only: a disk that fills up (ENOSPC) cannot be
 * produced without root, so tests swap `open` for one whose handle fails its writes.
 */
export const fsWriterFiles = {
  open: (file: string, flags: string): Promise<FileHandle> => open(file, flags),
};

export class FsWriter extends EventEmitter implements ContentWriter {
  written: number;
  state: WriterState = 'writing';
  failure: Error | undefined;
  /** Where the bytes are now: the writer's own file, then the published content. */
  currentPath: string;
  #hash = createDigester('sha256');
  #writing: Promise<void> = Promise.resolve();
  #committed: StoredContent | undefined;

  private constructor(readonly id: string, private readonly handle: FileHandle, private readonly contentPath: (digest: Digest) => string, file: string, written: number) {
    super();
    this.setMaxListeners(0);
    this.currentPath = file;
    this.written = written;
  }

  /** A new writer on a file that must not exist yet. */
  static async create(id: string, file: string, contentPath: (digest: Digest) => string): Promise<FsWriter> {
    await mkdir(path.dirname(file), { recursive: true });
    return new FsWriter(id, await fsWriterFiles.open(file, 'wx'), contentPath, file, 0);
  }

  /** Continues the writer whose bytes are in `file`: what it holds is hashed again. */
  static async resume(id: string, file: string, contentPath: (digest: Digest) => string): Promise<FsWriter> {
    const handle = await fsWriterFiles.open(file, 'r+');
    const writer = new FsWriter(id, handle, contentPath, file, (await handle.stat()).size);
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) writer.#hash.update(chunk as Buffer);
    return writer;
  }

  write(chunk: Uint8Array): Promise<void> {
    const next = this.#writing.then(() => this.#append(chunk));
    this.#writing = next.catch(() => {});
    return next;
  }

  async #append(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'writing') throw this.failure ?? new Error(`writer ${this.id} has already committed`);
    let offset = 0;
    while (offset < chunk.byteLength) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.byteLength - offset, this.written + offset);
      offset += bytesWritten;
    }
    this.#hash.update(chunk);
    this.written += chunk.byteLength;
    this.emit('progress', this.written);
  }

  async commit(expected: Digest, size?: number): Promise<StoredContent> {
    await this.#writing;
    if (this.state === 'committed' && this.#committed?.digest.value === expected.value) return this.#committed;
    if (this.state !== 'writing') throw this.failure ?? new Error(`writer ${this.id} is finished`);
    if (size !== undefined && this.written !== size) {
      throw await this.#fail(new SizeInvalidError(`${this.written} bytes were written for ${expected.value}, not the ${size} announced`));
    }
    const actual = await this.#digest(expected);
    if (actual !== expected.value) throw await this.#fail(new DigestInvalidError(`the bytes written for ${expected.value} hash to ${actual}`));
    await this.#publish(expected);
    this.#committed = { digest: expected, size: this.written };
    this.state = 'committed';
    this.emit('settled');
    return this.#committed;
  }

  cancel(reason?: Error): Promise<void> {
    return this.#fail(reason ?? new Error(`writer ${this.id} was cancelled`)).then(() => undefined);
  }

  growing(): GrowingFile {
    return fsGrowingFile(this);
  }

  /** fdatasync of what the file holds so far, while more arrives: the commit's fsync then has little left (upload sessions). */
  async flushSoFar(): Promise<void> {
    if (this.state === 'writing') await this.handle.datasync().catch(() => {});
  }

  /** Closes the file and keeps it, for a resume by id (upload sessions that moved to another process). */
  async release(): Promise<void> {
    await this.#writing;
    if (this.state !== 'writing') return;
    this.state = 'failed';
    this.failure = new Error(`writer ${this.id} was released by this process`);
    this.emit('settled');
    await this.handle.close().catch(() => {});
  }

  async #digest(expected: Digest): Promise<string> {
    if (expected.algorithm === 'sha256') return `sha256:${this.#hash.copy().digest('hex')}`;
    const hash = createDigester(expected.algorithm);
    for await (const chunk of createReadStream(this.currentPath, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    return `${expected.algorithm}:${hash.digest('hex')}`;
  }

  /** fsync, rename into place, fsync the directory: the name appears only on durable bytes. */
  async #publish(digest: Digest): Promise<void> {
    const target = this.contentPath(digest);
    try {
      await this.handle.sync();
      await this.handle.close();
      await mkdir(path.dirname(target), { recursive: true });
      await rename(this.currentPath, target);
    } catch (error) {
      throw await this.#fail(error as Error);
    }
    this.currentPath = target;
    await syncDirectory(path.dirname(target));
  }

  /** Abandons the writer: removes its file and wakes every reader with `error`. */
  async #fail(error: Error): Promise<Error> {
    if (this.state !== 'writing') return this.failure ?? error;
    this.state = 'failed';
    this.failure = error;
    this.emit('settled');
    await this.handle.close().catch(() => {});
    await rm(this.currentPath, { force: true }).catch(() => {});
    return error;
  }
}

/** Makes a rename in `dir` durable (fsync(2) on the directory); not every platform allows it. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => {});
  await handle.close().catch(() => {});
}
