/**
 * One content-store writer on the local disk: bytes go to a file of their own while they are
 * hashed; the commit checks size and digest, fsyncs the file, renames it into `blobs/` and
 * fsyncs that directory, so a power cut never leaves a published name on missing bytes (issue
 * 12 item 9). On a mismatch or a cancel the file is removed: nothing partial is ever published
 * (compare distribution's registry/storage/blobwriter.go, which verifies before the move).
 *
 * Writes land in the page cache, which takes a 64 KiB chunk in tens of microseconds: a cache
 * fill appends them at once on the event loop (`append`), as nginx writes its proxy temp
 * files, instead of paying a thread-pool round trip per chunk, which on a busy machine cost more
 * than the write itself (docs/benchmarks.md, "Where the time goes on a miss"). A disk that
 * stops keeping up shows as a slow write (the kernel throttles writers once too much is dirty);
 * from then on writes go through the thread pool for a while, so the event loop never waits
 * for the disk for long. `write` always takes the thread pool.
 *
 * A fill's chunks after its first are gathered into writes of whole aligned blocks, up to 1 MiB
 * (write-gather.ts): the page cache then holds the blob in large folios, which every later
 * sendfile of it walks faster. Gathered bytes wait at most GATHER_WAIT_MS for their block.
 *
 * Readers may follow the file while it grows (fs-growing-file.ts): `written` counts only bytes
 * the kernel accepted, and they are woken once per burst of writes. The last byte becomes
 * readable once the commit has checked the digest (`verified`), before the fsync.
 *
 * Bytes are hashed with sha256 as they come, since the digest is known only at the commit; a
 * commit under another algorithm re-reads the file.
 */
import { close, createReadStream, fdatasync, fstatSync, fsync, mkdirSync, openSync, statSync, write, writeSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDigester, type Digest } from '../../domain/digest.js';
import { DigestInvalidError, SizeInvalidError } from '../../domain/errors.js';
import type { ContentWriter, GrowingFile, StoredContent } from '../content-store.js';
import { ReadersWake } from '../readers-wake.js';
import { fsGrowingFile } from './fs-growing-file.js';
import { GATHER_WAIT_MS, WriteGather } from './write-gather.js';

export type WriterState = 'writing' | 'committed' | 'failed';

const writeAsync = promisify(write);
const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

/**
 * How writer files are opened and written. A seam for tests only: a disk that fills up (ENOSPC)
 * cannot be produced without root, so tests swap these for functions that fail.
 */
export const fsWriterFiles = {
  openSync: (file: string, flags: string): number => openSync(file, flags),
  writeSync: (fd: number, bytes: Uint8Array, offset: number, length: number, position: number): number => writeSync(fd, bytes, offset, length, position),
  write: async (fd: number, bytes: Uint8Array, offset: number, length: number, position: number): Promise<number> => (await writeAsync(fd, bytes, offset, length, position)).bytesWritten,
};

/** A write on the event loop slower than this means the disk is behind (dirty-page throttling). */
const SLOW_WRITE_MS = 5;
/** After a slow write, writes take the thread pool for this long before the loop tries again. */
const THREAD_POOL_SPELL_MS = 2_000;

export class FsWriter implements ContentWriter {
  written: number;
  state: WriterState = 'writing';
  failure: Error | undefined;
  /** Set once the commit has checked size and digest: readers may take the last byte. */
  verified = false;
  /** Where the bytes are now: the writer's own file, then the published content. */
  currentPath: string;
  /** Where the commit is moving them (set before the rename, so readers can look there too). */
  publishingTo: string | undefined;
  #fd: number | undefined;
  #hash = createDigester('sha256');
  /** Thread-pool writes in order; undefined while none is pending. */
  #pending: Promise<void> | undefined;
  #threadPoolUntil = 0;
  #committed: StoredContent | undefined;
  #removal: Promise<void> | undefined;
  readonly #readers = new ReadersWake();
  readonly #gather = new WriteGather();
  /** Writes what is gathered once it has waited GATHER_WAIT_MS for the rest of its block. */
  #gatherTimer: NodeJS.Timeout | undefined;
  /** Bytes handed to the thread pool and not written yet: the gather's next block starts after them. */
  #queued = 0;

  private constructor(readonly id: string, fd: number, readonly publishedPath: (digest: Digest) => string, file: string, written: number) {
    this.#fd = fd;
    this.currentPath = file;
    this.written = written;
  }

  /** A new writer on a file that must not exist yet; opened on the loop (one syscall, no round trip). */
  static async create(id: string, file: string, contentPath: (digest: Digest) => string): Promise<FsWriter> {
    return new FsWriter(id, openCreating(file), contentPath, file, 0);
  }

  /** Continues the writer whose bytes are in `file`: what it holds is hashed again. */
  static async resume(id: string, file: string, contentPath: (digest: Digest) => string): Promise<FsWriter> {
    const fd = fsWriterFiles.openSync(file, 'r+');
    const writer = new FsWriter(id, fd, contentPath, file, fstatSync(fd).size);
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) writer.#hash.update(chunk as Buffer);
    return writer;
  }

  /**
   * Takes a fill's `chunk`: the first is written at once (a reader's first byte never waits),
   * later ones are gathered into whole blocks (write-gather.ts), each written on the event loop
   * while the disk keeps up, else through the thread pool. Undefined when the chunk is taken;
   * a promise to await before the next one while a block is being written in the thread pool.
   * Throws (or rejects with) what a write threw (ENOSPC), after failing the writer.
   */
  append(chunk: Uint8Array): Promise<void> | undefined {
    if (this.state !== 'writing') throw this.failure ?? new Error(`writer ${this.id} has already committed`);
    try {
      if (this.written + this.#queued === 0 && this.#gather.held === 0 && this.#onLoop()) return this.#writeOnLoop(chunk);
      let behind: Promise<void> | undefined;
      for (let offset = 0; offset < chunk.byteLength; ) {
        offset += this.#gather.take(this.written + this.#queued, chunk, offset);
        if (!this.#gather.full(this.written + this.#queued)) continue;
        if (this.#onLoop()) this.#writeOnLoop(this.#takeGathered()!);
        else behind = this.#inThreadPool();
      }
      if (this.#gather.held > 0) this.#gatherTimer ??= setTimeout(() => void this.#writeGathered().catch(() => {}), GATHER_WAIT_MS).unref();
      return behind;
    } catch (error) {
      throw this.#fail(error as Error);
    }
  }

  /** Appends `chunk`, after what is gathered, through the thread pool, in order. */
  write(chunk: Uint8Array): Promise<void> {
    return this.#inThreadPool(chunk);
  }

  /** Writes what is gathered (lent by the gather until written), then `chunk` if any, after the pending writes. */
  #inThreadPool(chunk?: Uint8Array): Promise<void> {
    const gathered = this.#lendGathered();
    const writes = [gathered, chunk].filter((bytes) => bytes !== undefined);
    for (const bytes of writes) this.#queued += bytes.byteLength;
    const next = (this.#pending ?? Promise.resolve()).then(async () => {
      for (const bytes of writes) {
        await this.#writeInThreadPool(bytes);
        this.#queued -= bytes.byteLength;
      }
    });
    if (gathered) void next.then(() => this.#gather.giveBack(gathered), () => {});
    const settled = next.catch(() => {});
    this.#pending = settled;
    void settled.then(() => {
      if (this.#pending === settled) this.#pending = undefined;
    });
    return next;
  }

  async commit(expected: Digest, size?: number): Promise<StoredContent> {
    await this.#writeGathered();
    await this.#pending;
    this.#gather.drop();
    if (this.state === 'committed' && this.#committed?.digest.value === expected.value) return this.#committed;
    if (this.state !== 'writing') throw this.failure ?? new Error(`writer ${this.id} is finished`);
    if (size !== undefined && this.written !== size) {
      throw this.#fail(new SizeInvalidError(`${this.written} bytes were written for ${expected.value}, not the ${size} announced`));
    }
    const actual = await this.#digest(expected);
    if (actual !== expected.value) throw this.#fail(new DigestInvalidError(`the bytes written for ${expected.value} hash to ${actual}`));
    // The bytes are the right ones: readers may have the last byte while they are made durable.
    this.verified = true;
    this.#readers.now();
    await this.#publish(expected);
    this.#committed = { digest: expected, size: this.written };
    this.state = 'committed';
    this.#readers.now();
    return this.#committed;
  }

  /** Resolves once the writer's file is gone. */
  cancel(reason?: Error): Promise<void> {
    this.#fail(reason ?? new Error(`writer ${this.id} was cancelled`));
    return this.#removal ?? Promise.resolve();
  }

  growing(): GrowingFile {
    return fsGrowingFile(this);
  }

  /** fdatasync of what the file holds so far, while more arrives: the commit's fsync then has little left (upload sessions). */
  async flushSoFar(): Promise<void> {
    await this.#writeGathered().catch(() => {});
    const fd = this.#fd;
    if (this.state === 'writing' && fd !== undefined) await fdatasyncAsync(fd).catch(() => {});
  }

  /** Closes the file and keeps it, for a resume by id (upload sessions that moved to another process). */
  async release(): Promise<void> {
    await this.#writeGathered().catch(() => {});
    await this.#pending;
    if (this.state !== 'writing') return;
    this.state = 'failed';
    this.failure = new Error(`writer ${this.id} was released by this process`);
    this.#readers.now();
    await this.#closeFile().catch(() => {});
  }

  /** Calls `listener` once, after the next burst of writes or when the writer settles. */
  onceChanged(listener: () => void): () => void {
    return this.#readers.onceChanged(listener);
  }

  /** Whether writes may go on the event loop now: none is pending in the thread pool, and the disk was not slow a moment ago. */
  #onLoop(): boolean {
    return this.#pending === undefined && performance.now() >= this.#threadPoolUntil;
  }

  /** Writes `bytes` on the event loop; a slow write sends the writes of the next while to the thread pool. */
  #writeOnLoop(bytes: Uint8Array): undefined {
    const started = performance.now();
    let offset = 0;
    while (offset < bytes.byteLength) offset += fsWriterFiles.writeSync(this.#fd!, bytes, offset, bytes.byteLength - offset, this.written + offset);
    if (performance.now() - started > SLOW_WRITE_MS) this.#threadPoolUntil = performance.now() + THREAD_POOL_SPELL_MS;
    this.#appended(bytes);
    return undefined;
  }

  /** What is gathered, out of the gather (its timer stopped), for a write now; undefined when nothing is. */
  #takeGathered(): Buffer | undefined {
    this.#stopGatherTimer();
    return this.#gather.held > 0 ? this.#gather.takeOut() : undefined;
  }

  /** As #takeGathered, with the buffer, for a write in the thread pool. */
  #lendGathered(): Buffer | undefined {
    this.#stopGatherTimer();
    return this.#gather.held > 0 ? this.#gather.lendOut() : undefined;
  }

  #stopGatherTimer(): void {
    clearTimeout(this.#gatherTimer);
    this.#gatherTimer = undefined;
  }

  /** Writes what is gathered now: on the loop as `append` would, else through the thread pool. Rejects (the writer failed) on a write error. */
  async #writeGathered(): Promise<void> {
    if (this.#gather.held === 0 || this.state !== 'writing') return;
    if (!this.#onLoop()) return this.#inThreadPool();
    try {
      this.#writeOnLoop(this.#takeGathered()!);
    } catch (error) {
      throw this.#fail(error as Error);
    }
  }

  async #writeInThreadPool(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'writing') throw this.failure ?? new Error(`writer ${this.id} has already committed`);
    try {
      let offset = 0;
      while (offset < chunk.byteLength) offset += await fsWriterFiles.write(this.#fd!, chunk, offset, chunk.byteLength - offset, this.written + offset);
    } catch (error) {
      // This write is the pending one: its descriptor is free again, and no later one starts.
      throw this.#fail(error as Error, false);
    }
    this.#appended(chunk);
  }

  #appended(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.written += chunk.byteLength;
    this.#readers.soon();
  }

  async #digest(expected: Digest): Promise<string> {
    if (expected.algorithm === 'sha256') return `sha256:${this.#hash.copy().digest('hex')}`;
    const hash = createDigester(expected.algorithm);
    for await (const chunk of createReadStream(this.currentPath, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
    return `${expected.algorithm}:${hash.digest('hex')}`;
  }

  /**
   * fsync, rename into place, fsync the directory: the name appears only on durable bytes. When
   * the digest is published already (a blob pushed again, two uploads of one layer at once), the
   * bytes there are these bytes and durable: this file is dropped unsynced instead, its dirty
   * pages never written back, as distribution's blobwriter does when the target exists
   * (registry/storage/blobwriter.go, moveBlob). A published file of another size is not the
   * content (damaged by hand): it is replaced.
   */
  async #publish(digest: Digest): Promise<void> {
    const target = this.publishedPath(digest);
    this.publishingTo = target;
    if (publishedSize(target) === this.written) {
      await this.#removeFile(false);
      this.currentPath = target;
      return;
    }
    try {
      await fsyncAsync(this.#fd!);
      await this.#closeFile();
      await mkdir(path.dirname(target), { recursive: true });
      await rename(this.currentPath, target);
    } catch (error) {
      throw this.#fail(error as Error);
    }
    this.currentPath = target;
    await syncDirectory(path.dirname(target));
  }

  /**
   * Abandons the writer at once: readers are woken with `error` (their responses cut short) and
   * the file is removed in the background (`cancel` waits for that), so that a failed fill is
   * over for everyone now, not after a thread-pool round trip or two.
   */
  #fail(error: Error, waitForPendingWrite = true): Error {
    if (this.state !== 'writing') return this.failure ?? error;
    this.state = 'failed';
    this.failure = error;
    this.#stopGatherTimer();
    this.#gather.drop();
    this.#readers.now();
    this.#removal = this.#removeFile(waitForPendingWrite);
    return error;
  }

  async #removeFile(waitForPendingWrite: boolean): Promise<void> {
    // A thread-pool write may still use the descriptor: close it only after that write returned.
    if (waitForPendingWrite) await this.#pending;
    await this.#closeFile().catch(() => {});
    await rm(this.currentPath, { force: true }).catch(() => {});
  }

  async #closeFile(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) await closeAsync(fd);
  }
}

/**
 * The size of the file published at `target`, if any. A stat on the event loop: one metadata
 * lookup, cheaper than a thread-pool round trip, which would keep the fill's flight (and a client
 * asking for the blob again at once) waiting longer for the commit.
 */
function publishedSize(target: string): number | undefined {
  return statSync(target, { throwIfNoEntry: false })?.size;
}

/** Opens a new file for writing, creating its directory when it is missing. */
function openCreating(file: string): number {
  try {
    return fsWriterFiles.openSync(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(path.dirname(file), { recursive: true });
    return fsWriterFiles.openSync(file, 'wx');
  }
}

/** Makes a rename in `dir` durable (fsync(2) on the directory); not every platform allows it. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => {});
  await handle.close().catch(() => {});
}
