/**
 * Abandons cache fills that nobody follows and that hardly move (issue 12 item 8): a fill
 * trickling a few bytes a minute would otherwise hold one of its upstream's
 * `fetch.maxConcurrent` slots until the fill deadline (`fetch.fillTimeoutSeconds`, an hour by
 * default). undici's body timeout (`fetch.idleTimeoutSeconds`) catches total silence only.
 *
 * A fill is checked while no client follows it: once it has received less than
 * PROGRESS_BYTES in `stallMs`, it is abandoned (its writer cancelled, nothing kept); the next
 * client to ask fetches anew. One timer serves every fill, and only while there are fills.
 */
import { ProgressWatch } from '../coordination/progress-watch.js';
import { UpstreamUnavailableError } from '../domain/errors.js';

/** What a fill must receive per `stallMs` to count as moving: one socket read. */
export const PROGRESS_BYTES = 64 * 1024;

export interface WatchedFill {
  readonly key: string;
  /** Bytes received so far. */
  readonly received: number;
  abandon(reason: Error): void;
}

export class StallWatchdog {
  readonly #watch: ProgressWatch<WatchedFill>;

  constructor(stallMs: number, attended: (key: string) => boolean) {
    if (!Number.isFinite(stallMs) || stallMs <= 0) throw new TypeError(`expected fetch.abandonStalledSeconds to be a positive number, got ${stallMs / 1000}`);
    this.#watch = new ProgressWatch({
      limitMs: stallMs,
      checkEveryMs: Math.max(50, Math.floor(stallMs / 4)),
      progress: (fill) => fill.received,
      moved: (fill, advanced) => attended(fill.key) || advanced >= PROGRESS_BYTES,
      expire: (fill) => fill.abandon(new UpstreamUnavailableError(`the download of ${fill.key} was abandoned: no client followed it and it received less than ${PROGRESS_BYTES} bytes in ${stallMs / 1000} s (fetch.abandonStalledSeconds)`)),
    });
  }

  watch(fill: WatchedFill): void {
    this.#watch.watch(fill);
  }

  forget(fill: WatchedFill): void {
    this.#watch.forget(fill);
  }
}
