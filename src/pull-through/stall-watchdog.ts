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
import { UpstreamUnavailableError } from '../domain/errors.js';

/** What a fill must receive per `stallMs` to count as moving: one socket read. */
export const PROGRESS_BYTES = 64 * 1024;

export interface WatchedFill {
  readonly key: string;
  /** Bytes received so far. */
  readonly received: number;
  abandon(reason: Error): void;
}

interface Mark {
  at: number;
  received: number;
}

export class StallWatchdog {
  readonly #marks = new Map<WatchedFill, Mark>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly stallMs: number, private readonly attended: (key: string) => boolean) {
    if (!Number.isFinite(stallMs) || stallMs <= 0) throw new TypeError(`expected fetch.abandonStalledSeconds to be a positive number, got ${stallMs / 1000}`);
  }

  watch(fill: WatchedFill): void {
    this.#marks.set(fill, { at: Date.now(), received: fill.received });
    this.#timer ??= setInterval(() => this.#check(), Math.max(50, Math.floor(this.stallMs / 4))).unref();
  }

  forget(fill: WatchedFill): void {
    this.#marks.delete(fill);
    if (this.#marks.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #check(): void {
    const now = Date.now();
    for (const [fill, mark] of this.#marks) {
      if (this.attended(fill.key) || fill.received - mark.received >= PROGRESS_BYTES) {
        mark.at = now;
        mark.received = fill.received;
      } else if (now - mark.at >= this.stallMs) {
        const seconds = this.stallMs / 1000;
        fill.abandon(new UpstreamUnavailableError(`the download of ${fill.key} was abandoned: no client followed it and it received less than ${PROGRESS_BYTES} bytes in ${seconds} s (fetch.abandonStalledSeconds)`));
        this.forget(fill);
      }
    }
  }
}
