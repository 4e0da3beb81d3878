/**
 * Bounds how many blob downloads run against each upstream at once (`fetch.maxConcurrent`).
 * Requests beyond the bound wait in p-limit's queue; none fails because of the bound.
 */
import pLimit, { type LimitFunction } from 'p-limit';

export interface LimiterStats {
  active: number;
  queued: number;
}

/**
 * The bound as the download code sees it: this class within one process, RedisSemaphore
 * (coordination/redis-semaphore.ts) across replicas, the primary's slots across the workers of
 * one machine (coordination/worker-semaphore.ts).
 */
export interface UpstreamConcurrency {
  run<T>(upstream: string, work: () => Promise<T>): Promise<T>;
  stats(upstream: string): LimiterStats;
}

export class UpstreamLimiter implements UpstreamConcurrency {
  private readonly limits = new Map<string, LimitFunction>();

  constructor(private readonly maxConcurrent: number) {}

  run<T>(upstream: string, work: () => Promise<T>): Promise<T> {
    let limit = this.limits.get(upstream);
    if (!limit) {
      limit = pLimit(this.maxConcurrent);
      this.limits.set(upstream, limit);
    }
    return limit(work);
  }

  stats(upstream: string): LimiterStats {
    const limit = this.limits.get(upstream);
    return { active: limit?.activeCount ?? 0, queued: limit?.pendingCount ?? 0 };
  }
}
