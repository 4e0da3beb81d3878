/**
 * `fetch.maxConcurrent` per upstream for all the workers of one machine together: each fetch
 * takes a slot from the primary (slot-table.ts) before it starts and gives it back when it ends.
 * The shape of UpstreamLimiter (pull-through/upstream-limiter.ts), which it replaces in workers.
 */
import type { LimiterStats, UpstreamConcurrency } from '../pull-through/upstream-limiter.js';
import type { IpcChannel } from './ipc-channel.js';

export class IpcSemaphore implements UpstreamConcurrency {
  readonly #stats = new Map<string, LimiterStats>();

  constructor(private readonly channel: IpcChannel) {}

  async run<T>(upstream: string, work: () => Promise<T>): Promise<T> {
    const stats = this.#statsOf(upstream);
    let slot = 0;
    stats.queued += 1;
    try {
      await this.channel.request<number>({ op: 'slot.acquire', upstream }, (id) => (slot = id));
    } finally {
      stats.queued -= 1;
    }
    stats.active += 1;
    try {
      return await work();
    } finally {
      stats.active -= 1;
      this.channel.request({ op: 'slot.release', upstream, slot }).catch(() => {});
    }
  }

  stats(upstream: string): LimiterStats {
    return { ...this.#statsOf(upstream) };
  }

  #statsOf(upstream: string): LimiterStats {
    let stats = this.#stats.get(upstream);
    if (!stats) {
      stats = { active: 0, queued: 0 };
      this.#stats.set(upstream, stats);
    }
    return stats;
  }
}
