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
}

export class BlobFetch {
  /** Resolves with the blob's size once the upstream has answered and the temp file exists. */
  readonly ready: Promise<number>;
  /** Resolves once the blob is published in the cache; rejects if the fetch failed. */
  readonly settled: Promise<void>;
  private ingest: BlobIngest | undefined;
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

  /** Bytes [start, end] of the blob, delivered as they arrive. Call after `ready`. */
  open(start: number, end: number): Readable {
    if (!this.ingest) throw new Error('blob fetch is not ready');
    return followIngest(this.ingest, start, end);
  }

  private async download(): Promise<void> {
    const { digest, paths, fillTimeoutMs } = this.options;
    const signal = AbortSignal.timeout(fillTimeoutMs);
    const upstream = await this.options.open(signal);
    if (upstream.size === undefined) {
      // Without a length, clients could not be told Content-Length up front; such upstreams are rare.
      upstream.body.destroy();
      throw new UpstreamBadResponseError(`upstream sent ${digest.value} without a Content-Length`);
    }
    const ingest = await BlobIngest.start(paths, digest, upstream.size).catch((error: Error) => {
      upstream.body.destroy();
      throw error;
    });
    this.ingest = ingest;
    this.resolveReady(upstream.size);
    try {
      for await (const chunk of upstream.body) await ingest.write(chunk as Buffer);
      await ingest.commit();
    } catch (error) {
      upstream.body.destroy();
      throw await ingest.fail(asFetchError(error, digest, signal));
    }
    this.options.onCommitted(ingest.written);
  }
}

function asFetchError(error: unknown, digest: Digest, signal: AbortSignal): Error {
  if (signal.aborted) return new UpstreamUnavailableError(`fetching ${digest.value} exceeded the fill deadline`);
  // Our own verdicts (wrong digest or length) and local disk errors (ENOSPC) stay as they are.
  if (error instanceof MirrorError || isFileSystemError(error)) return error as Error;
  return new UpstreamUnavailableError(`upstream broke off while sending ${digest.value}: ${(error as Error).message}`);
}

function isFileSystemError(error: unknown): boolean {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}
