/**
 * Per-repository usage for `registry-mirror stats`, persisted in the metadata store: counts are
 * a Map increment on the request path and reach the store every few seconds and on close, as
 * one atomic add (metadata UsageStore), so processes and replicas sharing a store add up.
 * What counts as a pull and a hit is answer-accounting.ts.
 */
import { emptyUsageCounts, type UsageCounts, type UsageStore } from '../metadata/metadata-store.js';

const DEFAULT_FLUSH_MS = 5_000;

export class UsageRecorder {
  #pending = new Map<string, UsageCounts>();
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly store: Pick<UsageStore, 'add'>, flushMs = DEFAULT_FLUSH_MS) {
    this.#timer = setInterval(() => void this.flush(), flushMs);
    this.#timer.unref();
  }

  record(repository: string, event: { pull: boolean; hit: boolean }): void {
    let counts = this.#pending.get(repository);
    if (!counts) this.#pending.set(repository, (counts = emptyUsageCounts()));
    if (event.pull) counts.pulls += 1;
    if (event.hit) counts.hits += 1;
    else counts.misses += 1;
  }

  /** Adds what was counted since the last flush to the store. */
  flush(): Promise<void> {
    if (this.#pending.size === 0) return this.#flushing;
    const batch = this.#pending;
    this.#pending = new Map();
    this.#flushing = this.#flushing.then(() => this.store.add(batch)).catch(() => {
      // Statistics must never take the mirror down; a failed flush loses one interval.
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
