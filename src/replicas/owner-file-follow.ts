/**
 * A blob that another worker of this machine is downloading, followed in that worker's own file
 * (issue 16). The workers of one machine share one store on one disk, so a worker that lost a
 * blob's race has no reason to write and hash a second copy of bytes already landing there: on a
 * cold pull of a 158 MB image with two workers, the copies had doubled the mirror's CPU.
 *
 * The owner's stream (fleet-routes.ts) still comes: it is what says how far the file may be read.
 * It is the owner's progress (fill-progress.ts), or from an owner that sends the bytes themselves,
 * those bytes, counted and dropped. Either way the owner reports a byte only once it is in its
 * file, and the last one only after its digest check (storage/content-store.ts GrowingFile), so
 * what the stream reported so far is readable here, and the last byte of the blob never is before
 * the owner verified it. A stream that breaks, ends short or reports nonsense fails every reader
 * here at once, as a failed fill does, so a client is cut short rather than given a clean end of
 * wrong bytes.
 *
 * The file is opened where it is written, or, once the owner has published it (renamed, or
 * dropped for a copy already there), where it is published; an open descriptor survives both.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.js';
import { UpstreamUnavailableError } from '../domain/errors.js';
import type { RunningDownload } from '../pull-through/blob-download.js';
import { pumpBody } from '../pull-through/body-pump.js';
import type { FillFiles, GrowingFile, StoredContent } from '../storage/content-store.js';
import { openWrittenOrPublished } from '../storage/fs/fs-growing-file.js';
import { ReadersWake } from '../storage/readers-wake.js';
import { FillProgressReader } from './fill-progress.js';

export interface OwnerStream {
  /** The owner's Content-Length: a follow needs it to know the last byte. */
  size: number;
  body: Readable;
  /** The repository the owner's download comes through. */
  via: string;
  /** The owner fetched it without the mirror's credentials. */
  anonymous?: boolean;
  /** The body is the owner's progress records (fill-progress.ts), not the blob's bytes. */
  progress?: boolean;
}

export class OwnerFileFollow implements RunningDownload {
  readonly kind = 'download';
  readonly via: string;
  readonly anonymous: boolean;
  readonly size: number;
  readonly settled: Promise<StoredContent>;
  readonly growing: GrowingFile;
  #received = 0;
  #failure: Error | undefined;
  readonly #readers = new ReadersWake();

  /**
   * Follows `stream` (the owner's answer) for the file at `files`, which must lie inside
   * `storeRoot`: a path from elsewhere is refused (RangeError), and the caller copies instead.
   */
  constructor(readonly digest: Digest, stream: OwnerStream, private readonly files: FillFiles, storeRoot: string, signal: AbortSignal) {
    for (const file of [files.writing, files.published]) {
      if (!isInside(storeRoot, file)) throw new RangeError(`the owner's file ${JSON.stringify(file)} is not inside the store ${storeRoot}`);
    }
    this.via = stream.via;
    this.anonymous = stream.anonymous === true;
    this.size = stream.size;
    this.growing = {
      openSync: () => this.#open(),
      readable: (position, end) => this.#readable(position, end),
      onceChanged: (listener) => this.#readers.onceChanged(listener),
      finalSize: () => (this.#received === this.size ? this.size : undefined),
    };
    this.settled = this.#follow(stream.body, stream.progress === true, signal);
    this.settled.catch(() => {});
  }

  get written(): number {
    return this.#received;
  }

  async #follow(body: Readable, progress: boolean, signal: AbortSignal): Promise<StoredContent> {
    const abort = () => body.destroy(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    const records = progress ? new FillProgressReader(this.size, `the worker downloading ${this.digest.value}`) : undefined;
    try {
      await pumpBody(body, records ? (chunk) => this.#advanceTo(records.read(chunk)) : (chunk) => this.#advanceTo(this.#received + chunk.byteLength));
      if (this.#received !== this.size) throw new UpstreamUnavailableError(`the worker downloading ${this.digest.value} sent ${this.#received} of its ${this.size} bytes`);
      this.#readers.now();
      return { digest: this.digest, size: this.size };
    } catch (error) {
      body.on('error', () => {}).destroy();
      this.#failure = signal.aborted && signal.reason instanceof Error ? signal.reason : asFollowError(error, this.digest);
      this.#readers.now();
      throw this.#failure;
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  #advanceTo(received: number): undefined {
    if (received === this.#received) return undefined;
    this.#received = received;
    if (this.#received > this.size) throw new UpstreamUnavailableError(`the worker downloading ${this.digest.value} sent more than its ${this.size} bytes`);
    this.#readers.soon();
    return undefined;
  }

  #readable(position: number, end: number): number {
    if (this.#failure) throw this.#failure;
    const available = Math.min(this.#received, end + 1) - position;
    if (available <= 0 && this.#received === this.size && end !== Infinity) throw new Error('the content ended before the requested range');
    return Math.max(0, available);
  }

  #open(): number {
    if (this.#failure) throw this.#failure;
    // Published a moment ago: renamed into place, or dropped for the copy already there.
    return openWrittenOrPublished(this.files.writing, this.files.published);
  }
}

function isInside(root: string, file: string): boolean {
  const relative = path.relative(path.resolve(root), path.resolve(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function asFollowError(error: unknown, digest: Digest): Error {
  if (error instanceof UpstreamUnavailableError) return error;
  return new UpstreamUnavailableError(`the worker downloading ${digest.value} broke off: ${(error as Error).message}`);
}
