/**
 * Per-repository usage counters for `registry-mirror stats`: pulls (manifest GETs by tag), and
 * cache hits and misses (manifest and blob GETs answered from the cache or from the upstream).
 *
 * Recording is a Map increment on the request path; the counts reach keyv every few seconds
 * and on close, merged into one record read-modify-write, so several replicas sharing Redis
 * add up (a flush racing another may lose one interval's counts, which statistics can bear).
 */
import type Keyv from 'keyv';

export interface UsageCounts {
  pulls: number;
  hits: number;
  misses: number;
}

export interface UsageRecord {
  /** When counting started (ms since epoch). */
  since: number;
  updatedAt: number;
  totals: UsageCounts;
  /** Keyed `<upstream>/<repository>`. */
  repositories: Record<string, UsageCounts>;
}

/** What the HTTP layer reports once per answered GET. */
export interface UsageEvent {
  upstream: string;
  repository: string;
  /** A manifest GET by tag: what a client does once per `pull`. */
  pull: boolean;
  /** Served from the cache (true) or fetched from the upstream (false). */
  hit: boolean;
}

export interface UsageRecorder {
  record(event: UsageEvent): void;
}

const RECORD_KEY = 'usage';
const DEFAULT_FLUSH_MS = 5_000;

export class UsageStats implements UsageRecorder {
  private pending = new Map<string, UsageCounts>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly keyv: Keyv<UsageRecord>, flushMs = DEFAULT_FLUSH_MS) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  record(event: UsageEvent): void {
    const key = `${event.upstream}/${event.repository}`;
    let counts = this.pending.get(key);
    if (!counts) this.pending.set(key, (counts = emptyCounts()));
    if (event.pull) counts.pulls += 1;
    if (event.hit) counts.hits += 1;
    else counts.misses += 1;
  }

  /** Adds what was counted since the last flush to the stored record. */
  flush(): Promise<void> {
    if (this.pending.size === 0) return this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = this.flushing.then(() => this.merge(batch)).catch(() => {
      // Statistics must never take the mirror down; a failed flush loses one interval.
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** The stored record, or an empty one. */
  static async read(keyv: Keyv<UsageRecord>): Promise<UsageRecord> {
    return (await keyv.get(RECORD_KEY)) ?? emptyRecord(Date.now());
  }

  private async merge(batch: Map<string, UsageCounts>): Promise<void> {
    const now = Date.now();
    const record = (await this.keyv.get(RECORD_KEY)) ?? emptyRecord(now);
    for (const [repository, counts] of batch) {
      addCounts((record.repositories[repository] ??= emptyCounts()), counts);
      addCounts(record.totals, counts);
    }
    record.updatedAt = now;
    await this.keyv.set(RECORD_KEY, record);
  }
}

/** Hits over all answered GETs; null before any. */
export function hitRatio(counts: UsageCounts): number | null {
  const total = counts.hits + counts.misses;
  return total === 0 ? null : counts.hits / total;
}

function emptyCounts(): UsageCounts {
  return { pulls: 0, hits: 0, misses: 0 };
}

function emptyRecord(now: number): UsageRecord {
  return { since: now, updatedAt: now, totals: emptyCounts(), repositories: {} };
}

function addCounts(target: UsageCounts, more: UsageCounts): void {
  target.pulls += more.pulls;
  target.hits += more.hits;
  target.misses += more.misses;
}
