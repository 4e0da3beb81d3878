/**
 * Blob fills from upstreams, one per digest however many clients want it (a flight held open
 * until the fill settles: coordination/flights.ts `hold`), bounded per upstream
 * (`fetch.maxConcurrent` running, `fetch.maxQueued` waiting: upstream-limiter.ts), listed for
 * metrics and the status page, and drained at shutdown. Keyed by digest alone: a client asking
 * under another repository name joins the running download (the access guard then checks that
 * name: guarded-registry.ts).
 *
 * Every joiner is counted while it waits or follows (download-demand.ts, issue 12 item 8): a
 * client that leaves stops waiting at once, a queued fetch that nobody wants any more is dropped
 * before it starts, and a fill that nobody follows and that stalls is abandoned
 * (stall-watchdog.ts). A client leaving never stops a fill that moves: the fill has its own
 * deadline, as distribution's detached cache writes do.
 */
import type { Flights } from '../coordination/flights.js';
import type { Digest } from '../domain/digest.js';
import { ClientGoneError, FetchDroppedError, UpstreamUnavailableError } from '../domain/errors.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import { BlobDownload, type DownloadStores, type RunningDownload } from './blob-download.js';
import { DownloadDemand, type DemandKind } from './download-demand.js';
import { StallWatchdog } from './stall-watchdog.js';
import type { UpstreamConcurrency } from './upstream-limiter.js';
import type { UpstreamPort } from './upstream-port.js';

/** The content turned up in the store before a download was needed (another process, or a flight that just ended). */
export interface AlreadyStored {
  readonly kind: 'stored';
  readonly settled: Promise<void>;
}

export type HeldBlob = RunningDownload | AlreadyStored;

export interface BlobDownloadsOptions extends DownloadStores {
  flights: Flights;
  limiter: Pick<UpstreamConcurrency, 'run'>;
  fillTimeoutMs: number;
  /** A fill no client follows is abandoned after this long with almost no progress (`fetch.abandonStalledSeconds`). */
  stalledFillMs?: number;
  /** Called after a fill failed with ENOSPC and `freedBytes` of cached blobs were evicted. */
  onDiskFull?: (freedBytes: number) => void;
}

export interface JoinOptions {
  /** Aborts when the client is gone: it stops waiting at once (ClientGoneError). */
  signal?: AbortSignal;
  /** Joined for a manifest's prefetch rather than a client (manifest-prefetch.ts). */
  kind?: DemandKind;
}

export interface Joined {
  held: HeldBlob;
  /** Whether this call started the download. */
  started: boolean;
  /** Call once the joiner stops following the download (or does not follow it at all). Idempotent. */
  leave: () => void;
}

/** Share of the budget evicted at least on ENOSPC, even when the failed fill had written little. */
const DISK_FULL_MIN_FREE_SHARE = 0.01;
const DEFAULT_STALLED_FILL_MS = 30_000;

export class BlobDownloads {
  readonly #active = new Set<BlobDownload>();
  readonly #aborts = new Set<AbortController>();
  readonly #demand = new DownloadDemand();
  readonly #watchdog: StallWatchdog;

  constructor(private readonly options: BlobDownloadsOptions) {
    this.#watchdog = new StallWatchdog(options.stalledFillMs ?? DEFAULT_STALLED_FILL_MS, (key) => this.#demand.attended(key));
  }

  /** Downloads under way, for metrics and the status page. */
  list(): Array<{ digest: string; bytesWritten: number; size: number | undefined; via: string }> {
    return [...this.#active].map((download) => ({ digest: download.digest.value, bytesWritten: download.written, size: download.size, via: download.via }));
  }

  /** The download of `digest` under way in this process, if any. */
  running(digest: Digest): RunningDownload | undefined {
    for (const download of this.#active) if (download.digest.value === digest.value) return download;
    return undefined;
  }

  /**
   * The download of `digest`: the one under way, or a new one through `target`. The joiner is
   * counted as wanting it until it calls `leave` (or its signal aborts before the download
   * started); callers that follow the download leave when they stop reading it.
   */
  async join(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, options: JoinOptions = {}): Promise<Joined> {
    const leave = this.#demand.enter(digest.value, options.kind ?? 'client');
    try {
      let started = false;
      const holding = this.options.flights.hold(`blob ${digest.value}`, (signal) => {
        started = true;
        return this.#start(target, upstream, digest, signal);
      }, { deadlineMs: this.options.fillTimeoutMs });
      const held = await untilGone(holding, options.signal);
      return { held, started, leave };
    } catch (error) {
      leave();
      throw error;
    }
  }

  /**
   * Counts one more joiner of `digest` until the function returned is called: for subclasses
   * that hand out downloads this class did not start (replicas/fleet-downloads.ts).
   */
  protected wantedBy(digest: Digest, kind: DemandKind): () => void {
    return this.#demand.enter(digest.value, kind);
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

  /**
   * Waits for the fills that have every byte and are being published: their clients may already
   * have the whole blob (the last byte goes out once the digest is checked, before the fsync), so
   * a tool that closes the mirror after reading a blob (warm) must not cut that short.
   */
  async finishCommits(): Promise<void> {
    await Promise.allSettled([...this.#active].filter((download) => download.committing).map((download) => download.settled));
  }

  /** Looks at shared state first (the flights contract), then opens the upstream within its bounds. */
  async #start(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, flightSignal: AbortSignal): Promise<HeldBlob> {
    if (await this.options.content.stat(digest)) return { kind: 'stored', settled: Promise.resolve() };
    const abort = new AbortController();
    const signal = AbortSignal.any([flightSignal, abort.signal]);
    const wanted = () => this.#demand.wanted(digest.value);
    return new Promise<HeldBlob>((resolve, reject) => {
      this.options.limiter.run(upstream.name, async () => {
        // A limiter that cannot drop queued work (one shared through Redis) still runs it: drop it here.
        if (!wanted()) throw new FetchDroppedError(`the fetch of ${digest.value} was dropped before it started: no client waits for it any more`);
        this.#aborts.add(abort);
        try {
          const download = await this.#open(target, upstream, digest, signal);
          resolve(download);
          await download.settled.catch(() => {});
        } finally {
          this.#aborts.delete(abort);
        }
      }, { wanted }).catch(reject);
    });
  }

  async #open(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, signal: AbortSignal): Promise<BlobDownload> {
    signal.throwIfAborted();
    const answer = await upstream.fetchBlob(target.repository, digest.value, { signal });
    const download = await BlobDownload.start(digest, repositoryKey(target), answer, this.options, signal);
    this.#track(download);
    return download;
  }

  #track(download: BlobDownload): void {
    const watched = { key: download.digest.value, get received() { return download.received; }, abandon: (reason: Error) => download.abandon(reason) };
    this.#active.add(download);
    this.#watchdog.watch(watched);
    const done = () => {
      this.#active.delete(download);
      this.#watchdog.forget(watched);
    };
    download.settled.then(done, (error: unknown) => {
      done();
      void this.#onFillFailed(error, download.written);
    });
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

/** `holding`, unless the client leaves first: then ClientGoneError, and the flight goes on for the others. */
export function untilGone<T>(holding: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return holding;
  if (signal.aborted) return Promise.reject(new ClientGoneError('the client left before its blob download started'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ClientGoneError('the client left before its blob download started'));
    signal.addEventListener('abort', onAbort, { once: true });
    holding.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
