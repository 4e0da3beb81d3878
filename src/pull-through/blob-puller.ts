/**
 * Blobs: from the cache when present, else from one shared upstream download.
 *
 * Blobs are stored once per digest whatever repository or upstream they came through (the same
 * digest is the same bytes). In-flight downloads are keyed by digest alone, so a client asking
 * under another repository name joins the running download too.
 */
import type { Readable } from 'node:stream';
import type { Digest } from '../domain/digest.js';
import { BlobUnknownError } from '../domain/errors.js';
import type { BlobLru } from '../eviction/blob-lru.js';
import type { BlobStore } from '../store/blob-store.js';
import type { RepositoryTarget } from '../upstream/upstream-router.js';
import { BlobFetch } from './blob-fetch.js';
import type { UpstreamLimiter } from './upstream-limiter.js';
import type { UpstreamPort } from './upstream-port.js';

export type BlobOrigin = 'cache' | 'upstream' | 'joined';

export interface BlobAnswer {
  size: number;
  origin: BlobOrigin;
  /** Bytes [start, end] (inclusive). Call at most once; the stream releases the blob when done. */
  open(start: number, end: number): Readable;
  /** Releases the blob without reading it (HEAD, 416, or a response that never started), or after reading it with the read error if any. */
  release(error?: Error): void;
  /**
   * The published file, for cache hits: lets the HTTP layer send it to the socket itself
   * (http/send-file.ts). Whoever reads it this way calls `release()` when done.
   */
  path?: string;
  /** For cache hits: `path` relative to `<cache.dir>/blobs/`, '/'-separated (nginx X-Accel-Redirect). */
  pathUnderBlobsDir?: string;
  /**
   * For a blob still downloading: its file as it grows, for an HTTP layer that sends files itself
   * (http/send-file-zero-copy.ts); the same rules as `open()`, the last byte after the digest check.
   */
  growing?: GrowingFile;
}

/** A blob file as a sender reads it directly (store/growing-blob.ts). */
export interface GrowingFile {
  /** Opens the file where it is now (a commit renames it; the descriptor survives that). */
  openSync(): number;
  /** Bytes that may be read from `position` of a range ending (inclusive) at `end`; 0: wait. Throws when the download failed. */
  readable(position: number, end: number): number;
  /** Calls `listener` once, when `readable` may have changed; returns a cancel function. */
  onceChanged(listener: () => void): () => void;
}

export interface BlobPullerOptions {
  store: BlobStore;
  lru: BlobLru;
  limiter: UpstreamLimiter;
  upstreams: Map<string, UpstreamPort>;
  fillTimeoutMs: number;
  offline: boolean;
  /** Called after a fill failed with ENOSPC and `freedBytes` of cached blobs were evicted. */
  onDiskFull?: (freedBytes: number) => void;
  /** Called when a download from the upstream starts, naming the repository it goes through. */
  onUpstreamFetch?: (target: RepositoryTarget, digest: string) => void;
}

/** Share of the budget evicted at least on ENOSPC, even when the failed blob was small or its size unknown. */
const DISK_FULL_MIN_FREE_SHARE = 0.01;

export class BlobPuller {
  private readonly inFlight = new Map<string, BlobFetch>();

  constructor(private readonly options: BlobPullerOptions) {}

  /** Downloads under way, for metrics and the status page. */
  downloads(): Array<{ digest: string; bytesWritten: number; size: number | undefined }> {
    return [...this.inFlight].map(([digest, fetch]) => ({ digest, bytesWritten: fetch.bytesWritten, size: fetch.size }));
  }

  /**
   * Shutdown: gives running downloads up to `timeoutMs` to finish, then abandons the rest, whose
   * temp files are removed; the cache then holds only complete, verified blobs.
   */
  async drain(timeoutMs: number): Promise<void> {
    const settledAll = () => Promise.allSettled([...this.inFlight.values()].map((fetch) => fetch.settled));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([settledAll(), deadline]);
    clearTimeout(timer);
    for (const fetch of this.inFlight.values()) fetch.abort();
    await settledAll();
  }

  /** The blob's size without reading or pulling it (HEAD). */
  async size(target: RepositoryTarget, digest: Digest): Promise<number> {
    const cached = await this.options.store.size(digest);
    if (cached !== undefined) return cached;
    const running = this.inFlight.get(digest.value);
    if (running) return running.ready;
    const { size } = await this.upstream(target, digest).headBlob(target.repository, digest.value);
    if (size === undefined) throw new BlobUnknownError(`upstream did not give the size of ${digest.value}`);
    return size;
  }

  async get(target: RepositoryTarget, digest: Digest): Promise<BlobAnswer> {
    const cached = await this.fromCache(digest);
    if (cached) return cached;
    const running = this.inFlight.get(digest.value);
    if (running) return this.fromFetch(running, 'joined');
    // A download may have finished while we looked at the disk. It publishes the file before it
    // leaves inFlight, so a second look settles it without starting a duplicate download.
    const published = await this.fromCache(digest);
    if (published) return published;
    const joined = this.inFlight.get(digest.value);
    return joined ? this.fromFetch(joined, 'joined') : this.fromFetch(this.startFetch(target, digest), 'upstream');
  }

  private async fromCache(digest: Digest): Promise<BlobAnswer | undefined> {
    // The index knows the size of every blob this process published or found at start-up; a
    // stat is needed only for blobs another process (warm, import) added meanwhile.
    const size = this.options.lru.sizeOf(digest.value) ?? (await this.options.store.size(digest));
    if (size === undefined) return undefined;
    const unpin = this.options.lru.use(digest.value, size);
    const release = (error?: Error) => {
      unpin();
      // Deleted behind the index's back (another process's verify, an operator): forget it, so
      // the next request looks at the disk again and pulls the blob anew.
      if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') this.options.lru.remove(digest.value);
    };
    return {
      size,
      origin: 'cache',
      open: (start, end) => {
        let failure: Error | undefined;
        return this.options.store.read(digest, start, end).once('error', (error) => (failure = error)).once('close', () => release(failure));
      },
      release,
      path: this.options.store.paths.blob(digest),
      pathUnderBlobsDir: this.options.store.paths.blobUnderBlobsDir(digest),
    };
  }

  private async fromFetch(fetch: BlobFetch, origin: BlobOrigin): Promise<BlobAnswer> {
    const size = await fetch.ready;
    return { size, origin, open: (start, end) => fetch.open(start, end), release: () => {}, growing: fetch.growing() };
  }

  private startFetch(target: RepositoryTarget, digest: Digest): BlobFetch {
    const upstream = this.upstream(target, digest);
    const fetch = new BlobFetch({
      digest,
      paths: this.options.store.paths,
      fillTimeoutMs: this.options.fillTimeoutMs,
      open: (signal) => upstream.fetchBlob(target.repository, digest.value, { signal }),
      limit: (work) => this.options.limiter.run(target.upstream, work),
      onCommitted: (size) => this.options.lru.add(digest.value, size),
      reserve: (size) => this.options.lru.reserve(size),
    });
    this.options.onUpstreamFetch?.(target, digest.value);
    this.inFlight.set(digest.value, fetch);
    const forget = () => this.inFlight.delete(digest.value);
    fetch.settled.then(forget, (error: unknown) => {
      forget();
      this.onFillFailed(error, fetch.size);
    });
    return fetch;
  }

  /**
   * Disk full: the failed client has been cut off and its temp file removed (BlobIngest.fail).
   * Free at least that blob's size, least recently used first, so the next fill fits and what
   * is cached keeps being served. A full disk means the budget is larger than the disk allows.
   */
  private onFillFailed(error: unknown, size: number | undefined): void {
    if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ENOSPC') return;
    const lru = this.options.lru;
    const freed = lru.evictBytes(Math.max(size ?? 0, Math.ceil(lru.maxBytes * DISK_FULL_MIN_FREE_SHARE)));
    this.options.onDiskFull?.(freed);
  }

  private upstream(target: RepositoryTarget, digest: Digest): UpstreamPort {
    if (this.options.offline) throw new BlobUnknownError(`blob ${digest.value} is not cached and this mirror is offline`);
    const upstream = this.options.upstreams.get(target.upstream);
    if (!upstream) throw new BlobUnknownError(`no upstream ${target.upstream}`);
    return upstream;
  }
}
