/**
 * One upstream download of one blob into the content store: the handle every client that wants
 * the blob shares while it runs (blob-downloads.ts keeps it in a flight).
 *
 * The download is driven by itself, not by any client: a client that disconnects only stops its
 * own reader, and the fill goes on under its flight's deadline (`fetch.fillTimeoutSeconds`), as
 * distribution does with a detached context for its cache writes. Clients follow the writer's
 * file as it grows (storage/growing-file.ts), so the first byte reaches every joiner at once.
 *
 * The fill claims budget as bytes arrive (eviction/reservation.ts), links the repository it came
 * through to the digest once every byte is in (issue 12 item 2: the upstream confirmed that
 * repository serves it), and is then verified by digest (and by the announced length, when there
 * was one) and published; bytes that fail the check take the link back.
 * Every exit destroys the upstream body with its error handled (issue 12 item 1).
 */
import type { Digest } from '../domain/digest.js';
import { DigestInvalidError, MirrorError, SizeInvalidError, UpstreamBadResponseError, UpstreamUnavailableError } from '../domain/errors.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { Reservation } from '../eviction/reservation.js';
import type { LinkStore } from '../metadata/metadata-store.js';
import type { ContentStore, ContentWriter, GrowingFile, StoredContent } from '../storage/content-store.js';
import { pumpBody } from './body-pump.js';
import { discardUpstreamBody, type UpstreamBlob } from './upstream-port.js';

export interface DownloadStores {
  content: ContentStore;
  budget: CacheBudget;
  links: Pick<LinkStore, 'add' | 'remove'>;
}

/**
 * A download in progress as the clients following it see it: this process's fill (BlobDownload)
 * or another worker's, followed in its own file (replicas/owner-file-follow.ts).
 */
export interface RunningDownload {
  readonly kind: 'download';
  readonly digest: Digest;
  /** The repository key the bytes come through. */
  readonly via: string;
  /** The announced length, or the size once known; undefined before that without one. */
  readonly size: number | undefined;
  readonly growing: GrowingFile | undefined;
  /** Resolves once the blob is verified and in the store; rejects when the download failed. */
  readonly settled: Promise<StoredContent>;
  /** Bytes in so far. */
  readonly written: number;
  /** Fetched without the mirror's credentials (UpstreamBlob `anonymous`). */
  readonly anonymous?: boolean;
}

export class BlobDownload implements RunningDownload {
  readonly kind = 'download';
  /** Resolves once the blob is verified, published and indexed; rejects when the fill failed. */
  readonly settled: Promise<StoredContent>;
  /** The announced Content-Length, or the size once committed; undefined before that without one. */
  size: number | undefined;
  readonly growing: GrowingFile | undefined;
  readonly #reservation: Reservation;
  /** Bytes taken from the upstream, some possibly still on their way to the writer. */
  #received = 0;
  /** Every byte is in: the fill is checking, publishing and recording the blob. */
  committing = false;

  private constructor(readonly digest: Digest, readonly via: string, private readonly upstream: UpstreamBlob, private readonly writer: ContentWriter, private readonly stores: DownloadStores, signal: AbortSignal) {
    this.size = upstream.size;
    this.growing = writer.growing?.();
    this.#reservation = stores.budget.reserve();
    this.settled = this.#fill(signal);
    this.settled.catch(() => {});
  }

  /** Starts filling from an upstream answer; `via` is the repository key the answer came through. */
  static async start(digest: Digest, via: string, upstream: UpstreamBlob, stores: DownloadStores, signal: AbortSignal): Promise<BlobDownload> {
    let writer: ContentWriter;
    try {
      writer = await stores.content.writer(upstream.size === undefined ? {} : { sizeHint: upstream.size });
    } catch (error) {
      discardUpstreamBody(upstream.body);
      throw error;
    }
    return new BlobDownload(digest, via, upstream, writer, stores, signal);
  }

  get anonymous(): boolean {
    return this.upstream.anonymous === true;
  }

  /** Bytes written so far. */
  get written(): number {
    return this.writer.written;
  }

  async #fill(signal: AbortSignal): Promise<StoredContent> {
    try {
      await pumpBody(this.upstream.body, (chunk) => this.#append(chunk));
      this.committing = true;
      // Clients have the blob once the commit has checked it, before its fsync: that is its use.
      const usedAt = Date.now();
      const stored = await this.#linkedCommit();
      this.size = stored.size;
      await this.stores.budget.add(this.digest.value, stored.size, usedAt);
      return stored;
    } catch (error) {
      discardUpstreamBody(this.upstream.body);
      const failure = asFetchError(error, this.digest, signal);
      // Over for everyone at once: the flight ends now, so the next client starts afresh, while
      // the writer's file is removed in the background.
      void this.writer.cancel(failure).catch(() => {});
      throw failure;
    } finally {
      this.#reservation.release();
    }
  }

  /**
   * Links the repository, then publishes the blob: whoever finds it published (another worker,
   * another replica) finds it linked, and an anonymous client is not sent to probe the upstream
   * for it (access-policy.ts). The upstream answered 200 for it under that name; bytes that then
   * fail the check take the link back.
   */
  async #linkedCommit(): Promise<StoredContent> {
    await this.stores.links.add(this.via, this.digest.value);
    try {
      return await this.writer.commit(this.digest, this.upstream.size);
    } catch (error) {
      if (error instanceof DigestInvalidError || error instanceof SizeInvalidError) await this.stores.links.remove(this.via, this.digest.value).catch(() => {});
      throw error;
    }
  }

  /** Bytes received so far: once they have all been written, the bytes written. */
  get received(): number {
    return this.#received;
  }

  /**
   * Stops the download: the upstream body is destroyed with `reason`, which the fill then fails
   * with (clients following it are cut off, the writer is cancelled).
   */
  abandon(reason: Error): void {
    this.upstream.body.on('error', () => {}).destroy(reason);
  }

  /** Takes one chunk: at once, on the hot path; a promise only when the budget or the writer makes it wait. */
  #append(chunk: Buffer): Promise<void> | undefined {
    const announced = this.upstream.size;
    this.#received += chunk.byteLength;
    if (announced !== undefined && this.#received > announced) {
      throw new UpstreamBadResponseError(`upstream sent more than the ${announced} bytes announced for ${this.digest.value}`);
    }
    const room = this.#reservation.grow(chunk.byteLength);
    // The chunk may be a view of a connection's read buffer: it holds until this promise settles.
    return room === undefined ? this.#write(chunk) : room.then(() => this.#write(chunk));
  }

  #write(chunk: Buffer): Promise<void> | undefined {
    return this.writer.append ? this.writer.append(chunk) : this.writer.write(chunk);
  }
}

function asFetchError(error: unknown, digest: Digest, signal: AbortSignal): Error {
  if (signal.aborted) {
    return signal.reason instanceof MirrorError ? signal.reason : new UpstreamUnavailableError(`fetching ${digest.value} exceeded the fill deadline`);
  }
  // The upstream's bytes failed the check: its fault, a 502 (never a client's 4xx).
  if (error instanceof DigestInvalidError || error instanceof SizeInvalidError) return new UpstreamBadResponseError(`upstream sent wrong content for ${digest.value}: ${error.message}`);
  // Our own verdicts and local disk errors (ENOSPC) stay as they are.
  if (error instanceof MirrorError || isFileSystemError(error)) return error as Error;
  return new UpstreamUnavailableError(`upstream broke off while sending ${digest.value}: ${(error as Error).message}`);
}

function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
