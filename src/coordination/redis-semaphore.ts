/**
 * At most `maxConcurrent` upstream fetches per upstream across every process sharing one Redis
 * (issue 15 item 4: "the upstream concurrency bound (per upstream across the fleet)"). The same
 * shape as UpstreamLimiter (src/pull-through/upstream-limiter.ts), so it can replace it.
 *
 * A slot is a member of the sorted set `<p>slots:<upstream>`, scored by its expiry on the Redis
 * server's clock. A script takes one when fewer than maxConcurrent unexpired members remain,
 * reclaiming expired ones first: a process killed while fetching frees its slots within
 * slotTtlMs. Holders refresh their slots every third of that; a release publishes on
 * `<p>slots:released`, which wakes waiters everywhere, and waiters poll as well in case the
 * message was lost.
 *
 * In front of Redis each process keeps its own queue per upstream (p-limit, maxConcurrent), so a
 * process never has more contenders than slots, and refuses a fetch when `maxQueued` of its
 * fetches beyond maxConcurrent are already waiting or running, with UpstreamQueueFullError (503). While Redis cannot be reached, that local bound is
 * the only one (each process up to maxConcurrent, as UpstreamLimiter), logged once per outage;
 * one fetch a second tries Redis again, the others do not wait for a hung Redis.
 */
import { randomUUID } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import { CoordinationUnavailableError, UpstreamQueueFullError, assertIntegerOption } from './coordination-errors.js';
import { keepAlive, waitFor } from './lease-timers.js';
import { OutageNotice, type CoordinationLog } from './outage-notice.js';
import type { RedisCoordination } from './redis-coordination.js';

export interface RedisSemaphoreOptions {
  redis: RedisCoordination;
  /** Fetches per upstream at once across the fleet (`fetch.maxConcurrent`). */
  maxConcurrent: number;
  /** A killed process's slots are free again after at most this long; default 10,000 ms. */
  slotTtlMs?: number;
  /** How often a waiter retries without having heard of a release; default 250 ms. */
  pollIntervalMs?: number;
  /** Fetches per upstream this process lets wait before refusing more; default 1,000. */
  maxQueued?: number;
  log?: CoordinationLog;
}

export interface SemaphoreStats {
  /** Fetches of this process running (holding a fleet slot, or a local one while Redis is down). */
  active: number;
  /** Fetches of this process waiting, locally or for a fleet slot. */
  queued: number;
}

interface Upstream {
  readonly limit: LimitFunction;
  /** Fetches accepted by run() and not finished: waiting or running. */
  admitted: number;
  active: number;
}

export class RedisSemaphore {
  readonly #redis: RedisCoordination;
  readonly #maxConcurrent: number;
  readonly #slotTtlMs: number;
  readonly #pollIntervalMs: number;
  readonly #maxQueued: number;
  readonly #outage: OutageNotice;
  readonly #upstreams = new Map<string, Upstream>();
  readonly #wakers = new Map<string, Set<() => void>>();

  constructor(options: RedisSemaphoreOptions) {
    this.#redis = options.redis;
    this.#maxConcurrent = options.maxConcurrent;
    this.#slotTtlMs = options.slotTtlMs ?? 10_000;
    this.#pollIntervalMs = options.pollIntervalMs ?? 250;
    this.#maxQueued = options.maxQueued ?? 1_000;
    assertIntegerOption('maxConcurrent', this.#maxConcurrent, 1);
    assertIntegerOption('slotTtlMs', this.#slotTtlMs, 30);
    assertIntegerOption('pollIntervalMs', this.#pollIntervalMs, 1);
    assertIntegerOption('maxQueued', this.#maxQueued, 0);
    this.#outage = new OutageNotice('upstream concurrency bound', `each process allows ${this.#maxConcurrent} fetches per upstream`, options.log);
    options.redis.listen(options.redis.slotReleasedChannel, (upstream) => this.#wake(upstream));
  }

  /** Runs `work` once this process, and the fleet, have a slot for `upstream`. */
  run<T>(upstream: string, work: () => Promise<T>): Promise<T> {
    const state = this.#upstream(upstream);
    if (state.admitted >= this.#maxConcurrent + this.#maxQueued) {
      return Promise.reject(new UpstreamQueueFullError(`${this.#maxQueued} fetches from ${upstream} are already waiting for one of its ${this.#maxConcurrent} slots`));
    }
    state.admitted += 1;
    const done = () => void (state.admitted -= 1);
    const result = state.limit(() => this.#withSlot(upstream, state, work));
    result.then(done, done);
    return result;
  }

  stats(upstream: string): SemaphoreStats {
    const state = this.#upstreams.get(upstream);
    return { active: state?.active ?? 0, queued: (state?.admitted ?? 0) - (state?.active ?? 0) };
  }

  async #withSlot<T>(upstream: string, state: Upstream, work: () => Promise<T>): Promise<T> {
    const release = await this.#acquire(upstream);
    state.active += 1;
    try {
      return await work();
    } finally {
      state.active -= 1;
      release?.();
    }
  }

  /** A fleet slot (its release function), or undefined when Redis cannot be reached. */
  async #acquire(upstream: string): Promise<(() => void) | undefined> {
    const key = `${this.#redis.prefix}slots:${upstream}`;
    const token = randomUUID();
    for (;;) {
      if (!this.#outage.shouldTryRedis()) return undefined;
      try {
        const taken = await this.#redis.script('slotAcquire', [key], [token, this.#maxConcurrent, this.#slotTtlMs]);
        this.#outage.noticeUp();
        if (taken === 1) return this.#hold(upstream, key, token);
      } catch (error) {
        if (!(error instanceof CoordinationUnavailableError)) throw error;
        this.#outage.noticeDown(error);
        return undefined;
      }
      await waitFor<true>({ listen: (settle) => this.#onRelease(upstream, () => settle(true)), pollIntervalMs: this.#pollIntervalMs, onPoll: true });
    }
  }

  /** Refreshes the slot until released; a lost slot (a stall past its TTL) is simply no longer counted. */
  #hold(upstream: string, key: string, token: string): () => void {
    const refresh = async () => (await this.#redis.script('slotRefresh', [key], [token, this.#slotTtlMs])) === 1;
    const stop = keepAlive(Math.max(1, Math.floor(this.#slotTtlMs / 3)), refresh, () => {});
    return () => {
      stop();
      void this.#redis.script('slotRelease', [key], [token, this.#redis.slotReleasedChannel, upstream]).catch(() => {});
    };
  }

  #onRelease(upstream: string, wake: () => void): () => void {
    let wakers = this.#wakers.get(upstream);
    if (!wakers) {
      wakers = new Set();
      this.#wakers.set(upstream, wakers);
    }
    wakers.add(wake);
    return () => {
      wakers.delete(wake);
      if (wakers.size === 0 && this.#wakers.get(upstream) === wakers) this.#wakers.delete(upstream);
    };
  }

  #wake(upstream: string): void {
    for (const wake of [...(this.#wakers.get(upstream) ?? [])]) wake();
  }

  #upstream(upstream: string): Upstream {
    let state = this.#upstreams.get(upstream);
    if (!state) {
      state = { limit: pLimit(this.#maxConcurrent), admitted: 0, active: 0 };
      this.#upstreams.set(upstream, state);
    }
    return state;
  }
}
