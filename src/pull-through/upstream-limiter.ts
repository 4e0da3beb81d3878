/**
 * Bounds blob downloads per upstream: `fetch.maxConcurrent` run at once, and at most
 * `fetch.maxQueued` wait for a slot (issue 12 item 8). Past that bound a fetch is refused with
 * ServerBusyError (503 with Retry-After): a longer queue only holds requests until their clients
 * give up. A waiting fetch nobody wants any more (its clients all left, `wanted()` says false)
 * is dropped when its turn comes, before it reaches the upstream, and frees its place in the
 * queue as soon as another fetch needs it.
 *
 * p-limit, used here before, cannot take an entry out of its queue; this queue is a plain array
 * per upstream with the same first-in, first-out order.
 */
import { FetchDroppedError, ServerBusyError } from '../domain/errors.js';

export interface LimiterStats {
  active: number;
  queued: number;
}

export interface RunOptions {
  /** False once no client waits for the fetch: it is dropped instead of started. */
  wanted?: () => boolean;
}

interface Waiting {
  start(): void;
  drop(): void;
  wanted: () => boolean;
}

interface Lane {
  active: number;
  queue: Waiting[];
}

/** Seconds a client refused for a full queue is told to wait (Retry-After). */
const QUEUE_FULL_RETRY_AFTER_SECONDS = 5;

/**
 * The bound as the download code sees it: this class within one process, RedisSemaphore
 * (coordination/redis-semaphore.ts) across replicas, the primary's slots across the workers of
 * one machine (coordination/worker-semaphore.ts). Those cannot drop queued work: `options` is
 * this class's, and blob-downloads.ts drops unwanted work itself when its turn comes.
 */
export interface UpstreamConcurrency {
  run<T>(upstream: string, work: () => Promise<T>, options?: RunOptions): Promise<T>;
  stats(upstream: string): LimiterStats;
}

export class UpstreamLimiter implements UpstreamConcurrency {
  readonly #lanes = new Map<string, Lane>();

  constructor(private readonly maxConcurrent: number, private readonly maxQueued = 1_000) {
    for (const [name, value, minimum] of [['fetch.maxConcurrent', maxConcurrent, 1], ['fetch.maxQueued', maxQueued, 0]] as const) {
      if (!Number.isSafeInteger(value) || value < minimum) throw new TypeError(`expected ${name} to be an integer of at least ${minimum}, got ${value}`);
    }
  }

  run<T>(upstream: string, work: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    const lane = this.#lane(upstream);
    if (lane.active < this.maxConcurrent && lane.queue.length === 0) return this.#runNow(upstream, lane, work);
    if (lane.queue.length >= this.maxQueued) this.#purge(lane);
    if (lane.queue.length >= this.maxQueued) {
      return Promise.reject(new ServerBusyError(`${lane.queue.length} fetches from upstream ${upstream} are already waiting for one of its ${this.maxConcurrent} slots (fetch.maxQueued)`, QUEUE_FULL_RETRY_AFTER_SECONDS));
    }
    return new Promise<T>((resolve, reject) => {
      lane.queue.push({
        start: () => this.#runNow(upstream, lane, work).then(resolve, reject),
        drop: () => reject(new FetchDroppedError(`a fetch from upstream ${upstream} was dropped before it started: no client waits for it any more`)),
        wanted: options.wanted ?? (() => true),
      });
    });
  }

  stats(upstream: string): LimiterStats {
    const lane = this.#lanes.get(upstream);
    return { active: lane?.active ?? 0, queued: lane?.queue.length ?? 0 };
  }

  async #runNow<T>(upstream: string, lane: Lane, work: () => Promise<T>): Promise<T> {
    lane.active += 1;
    try {
      return await work();
    } finally {
      lane.active -= 1;
      this.#next(upstream, lane);
    }
  }

  /** Starts the next wanted fetch, dropping the unwanted ones ahead of it. */
  #next(upstream: string, lane: Lane): void {
    while (lane.active < this.maxConcurrent) {
      const waiting = lane.queue.shift();
      if (!waiting) break;
      if (waiting.wanted()) waiting.start();
      else waiting.drop();
    }
    if (lane.active === 0 && lane.queue.length === 0) this.#lanes.delete(upstream);
  }

  /** Drops every waiting fetch nobody wants any more. */
  #purge(lane: Lane): void {
    const kept: Waiting[] = [];
    for (const waiting of lane.queue) {
      if (waiting.wanted()) kept.push(waiting);
      else waiting.drop();
    }
    lane.queue = kept;
  }

  #lane(upstream: string): Lane {
    let lane = this.#lanes.get(upstream);
    if (!lane) {
      lane = { active: 0, queue: [] };
      this.#lanes.set(upstream, lane);
    }
    return lane;
  }
}
