/**
 * Blob fills from upstreams, one per digest however many clients want it (a flight held open
 * until the fill settles: coordination/flights.ts `hold`), bounded per upstream
 * (`fetch.maxConcurrent`, upstream-limiter.ts), listed for metrics and the status page, and
 * drained at shutdown. Keyed by digest alone: a client asking under another repository name
 * joins the running download (the access guard then checks that name: guarded-registry.ts).
 */
import type { Flights } from '../coordination/flights.js';
import type { Digest } from '../domain/digest.js';
import { UpstreamUnavailableError } from '../domain/errors.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import { BlobDownload, type DownloadStores } from './blob-download.js';
import type { UpstreamConcurrency } from './upstream-limiter.js';
import type { UpstreamPort } from './upstream-port.js';

/** The content turned up in the store before a download was needed (another process, or a flight that just ended). */
export interface AlreadyStored {
  readonly kind: 'stored';
  readonly settled: Promise<void>;
}

export type HeldBlob = BlobDownload | AlreadyStored;

export interface BlobDownloadsOptions extends DownloadStores {
  flights: Flights;
  limiter: UpstreamConcurrency;
  fillTimeoutMs: number;
  /** Called after a fill failed with ENOSPC and `freedBytes` of cached blobs were evicted. */
  onDiskFull?: (freedBytes: number) => void;
}

/** Share of the budget evicted at least on ENOSPC, even when the failed fill had written little. */
const DISK_FULL_MIN_FREE_SHARE = 0.01;

export class BlobDownloads {
  readonly #active = new Set<BlobDownload>();
  readonly #aborts = new Set<AbortController>();

  constructor(private readonly options: BlobDownloadsOptions) {}

  /** Downloads under way, for metrics and the status page. */
  list(): Array<{ digest: string; bytesWritten: number; size: number | undefined }> {
    return [...this.#active].map((download) => ({ digest: download.digest.value, bytesWritten: download.written, size: download.size }));
  }

  /** The download of `digest` under way in this process, if any. */
  running(digest: Digest): BlobDownload | undefined {
    for (const download of this.#active) if (download.digest.value === digest.value) return download;
    return undefined;
  }

  /**
   * The download of `digest`: the one under way, or a new one through `target`. `started` says
   * whether this call started it.
   */
  async join(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest): Promise<{ held: HeldBlob; started: boolean }> {
    let started = false;
    const held = await this.options.flights.hold(`blob ${digest.value}`, (signal) => {
      started = true;
      return this.#start(target, upstream, digest, signal);
    }, { deadlineMs: this.options.fillTimeoutMs });
    return { held, started };
  }

  /**
   * Shutdown: gives running downloads up to `timeoutMs` to finish, then abandons the rest, whose
   * writers are cancelled; the store then holds only complete, verified content.
   */
  async drain(timeoutMs: number): Promise<void> {
    const settledAll = () => Promise.allSettled([...this.#active].map((download) => download.settled));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([settledAll(), deadline]);
    clearTimeout(timer);
    const reason = new UpstreamUnavailableError('the download was abandoned: the mirror is shutting down');
    for (const abort of this.#aborts) abort.abort(reason);
    await settledAll();
  }

  /** Looks at shared state first (the flights contract), then opens the upstream within its concurrency bound. */
  async #start(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, flightSignal: AbortSignal): Promise<HeldBlob> {
    if (await this.options.content.stat(digest)) return { kind: 'stored', settled: Promise.resolve() };
    const abort = new AbortController();
    const signal = AbortSignal.any([flightSignal, abort.signal]);
    return new Promise<HeldBlob>((resolve, reject) => {
      void this.options.limiter.run(upstream.name, async () => {
        this.#aborts.add(abort);
        try {
          const download = await this.#open(target, upstream, digest, signal);
          resolve(download);
          await download.settled.catch(() => {});
        } catch (error) {
          reject(error);
        } finally {
          this.#aborts.delete(abort);
        }
      });
    });
  }

  async #open(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, signal: AbortSignal): Promise<BlobDownload> {
    signal.throwIfAborted();
    const answer = await upstream.fetchBlob(target.repository, digest.value, { signal });
    const download = await BlobDownload.start(digest, repositoryKey(target), answer, this.options, signal);
    this.#active.add(download);
    download.settled.then(() => this.#active.delete(download), (error: unknown) => {
      this.#active.delete(download);
      void this.#onFillFailed(error, download.written);
    });
    return download;
  }

  /**
   * Disk full: the fill's writer was cancelled and its client cut off. Free about what it had
   * written, least recently used first, so the next fill fits and what is cached keeps being
   * served; never the size the upstream announced (issue 12 item 7). A full disk means the
   * budget is larger than the disk allows.
   */
  async #onFillFailed(error: unknown, written: number): Promise<void> {
    if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ENOSPC') return;
    const { budget } = this.options;
    const freed = await budget.evictBytes(Math.max(written, Math.ceil(budget.maxBytes * DISK_FULL_MIN_FREE_SHARE)));
    this.options.onDiskFull?.(freed);
  }
}

