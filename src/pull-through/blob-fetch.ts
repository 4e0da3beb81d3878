/**
 * One upstream download of one blob, shared by every client that wants it while it runs.
 *
 * The download is driven by the fetch itself, not by any client: a client that disconnects only
 * stops its own reader, and the cache fill goes on under its own deadline (`fillTimeoutMs`),
 * as distribution does with a detached context for its cache writes. Clients read the temp file
 * as it grows (store/follow-file.ts), so the first byte reaches every joiner at once.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.js';
import { MirrorError, UpstreamBadResponseError, UpstreamUnavailableError } from '../domain/errors.js';
import { followIngest } from '../store/follow-file.js';
import { GrowingBlob } from '../store/growing-blob.js';
import { BlobIngest } from '../store/ingest-blob.js';
import type { StorePaths } from '../store/store-paths.js';
import type { UpstreamBlob } from './upstream-port.js';

export interface BlobFetchOptions {
  digest: Digest;
  paths: StorePaths;
  fillTimeoutMs: number;
  /** Opens the upstream response; called inside the upstream limiter. */
  open: (signal: AbortSignal) => Promise<UpstreamBlob>;
  /** Runs `work` within the upstream's concurrency bound. */
  limit: (work: () => Promise<void>) => Promise<void>;
  onCommitted: (size: number) => void;
  /**
   * Counts the announced size against the cache budget before the first byte is written
   * (eviction/blob-lru.ts `reserve`); the returned function gives the reservation back, just
   * before `onCommitted` or when the fetch fails.
   */
  reserve?: (size: number) => () => void;
}

export class BlobFetch {
  /** Resolves with the blob's size once the upstream has answered and the temp file exists. */
  readonly ready: Promise<number>;
  /** Resolves once the blob is published in the cache; rejects if the fetch failed. */
  readonly settled: Promise<void>;
  private ingest: BlobIngest | undefined;
  private readonly aborter = new AbortController();
  private resolveReady!: (size: number) => void;
  private rejectReady!: (error: Error) => void;

  constructor(private readonly options: BlobFetchOptions) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.settled = options.limit(() => this.download());
    this.settled.catch((error: Error) => this.rejectReady(error));
  }

  get bytesWritten(): number {
    return this.ingest?.written ?? 0;
  }

  /** The size the upstream announced; undefined until it answered. */
  get size(): number | undefined {
    return this.ingest?.expectedSize;
  }

  /** Stops the download (shutdown); the temp file is removed and readers see an error. */
  abort(): void {
    this.aborter.abort(new UpstreamUnavailableError(`fetching ${this.options.digest.value} was abandoned: the mirror is shutting down`));
  }

  /** The blob's file as it grows, for readers that read it themselves. Call after `ready`. */
  growing(): GrowingBlob {
    if (!this.ingest) throw new Error('blob fetch is not ready');
    return new GrowingBlob(this.ingest);
  }

  /** Bytes [start, end] of the blob, delivered as they arrive. Call after `ready`. */
  open(start: number, end: number): Readable {
    if (!this.ingest) throw new Error('blob fetch is not ready');
    return followIngest(this.ingest, start, end);
  }

  /**
   * The fill deadline is a timer this fetch owns, not AbortSignal.timeout(): AbortSignal.any()
   * holds its sources weakly, so a timeout signal could be garbage-collected mid-download and
   * never fire (seen in test/e2e/herd.test.ts).
   */
  private async download(): Promise<void> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.options.fillTimeoutMs);
    try {
      await this.downloadWithin(AbortSignal.any([deadline.signal, this.aborter.signal]));
    } finally {
      clearTimeout(timer);
    }
  }

  private async downloadWithin(signal: AbortSignal): Promise<void> {
    const { digest } = this.options;
    const upstream = await this.options.open(signal);
    if (upstream.size === undefined) {
      // Without a length, clients could not be told Content-Length up front; such upstreams are rare.
      upstream.body.destroy();
      throw new UpstreamBadResponseError(`upstream sent ${digest.value} without a Content-Length`);
    }
    const releaseSpace = this.options.reserve?.(upstream.size);
    let ingest: BlobIngest;
    try {
      ingest = await this.fill(upstream, upstream.size, signal);
    } finally {
      releaseSpace?.();
    }
    this.options.onCommitted(ingest.written);
  }

  private async fill(upstream: UpstreamBlob, size: number, signal: AbortSignal): Promise<BlobIngest> {
    const { digest, paths } = this.options;
    const ingest = await BlobIngest.start(paths, digest, size).catch((error: Error) => {
      upstream.body.destroy();
      throw error;
    });
    this.ingest = ingest;
    this.resolveReady(size);
    try {
      for await (const chunk of upstream.body) await ingest.write(chunk as Buffer);
      await ingest.commit();
    } catch (error) {
      upstream.body.destroy();
      throw await ingest.fail(asFetchError(error, digest, signal));
    }
    return ingest;
  }
}

function asFetchError(error: unknown, digest: Digest, signal: AbortSignal): Error {
  if (signal.aborted) {
    return signal.reason instanceof MirrorError ? signal.reason : new UpstreamUnavailableError(`fetching ${digest.value} exceeded the fill deadline`);
  }
  // Our own verdicts (wrong digest or length) and local disk errors (ENOSPC) stay as they are.
  if (error instanceof MirrorError || isFileSystemError(error)) return error as Error;
  return new UpstreamUnavailableError(`upstream broke off while sending ${digest.value}: ${(error as Error).message}`);
}

function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
