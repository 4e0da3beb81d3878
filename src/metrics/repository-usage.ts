/**
 * Pulls and cache hits per repository since start, for the status page's "top repositories".
 * In memory only; the map is bounded so that a client walking random names cannot grow it
 * without limit (the least used entries are dropped first). Recording is on every request's
 * path: a full map drops its least used quarter in one sort, so a new name costs a map insert,
 * not a sort of the whole map.
 */
export interface RepositoryUsageEntry {
  /** `<upstream>/<repository>`. */
  repository: string;
  /** Pulls and hits as metrics/answer-accounting.ts defines them. */
  pulls: number;
  hits: number;
  bytesServed: number;
}

export const MAX_REPOSITORIES = 1000;
/** What a full map keeps: room for 250 new names before the next sort. */
const KEPT_WHEN_FULL = MAX_REPOSITORIES * 0.75;

export class RepositoryUsage {
  private readonly entries = new Map<string, RepositoryUsageEntry>();

  record(repository: string, event: { pull: boolean; hit: boolean; bytes: number }): void {
    let entry = this.entries.get(repository);
    if (!entry) {
      if (this.entries.size >= MAX_REPOSITORIES) this.keepMostUsed(KEPT_WHEN_FULL);
      entry = { repository, pulls: 0, hits: 0, bytesServed: 0 };
      this.entries.set(repository, entry);
    }
    if (event.pull) entry.pulls += 1;
    if (event.hit) entry.hits += 1;
    entry.bytesServed += event.bytes;
  }

  /** The `count` repositories pulled most, then with the most bytes served. */
  top(count: number): RepositoryUsageEntry[] {
    return this.mostUsed().slice(0, count).map((entry) => ({ ...entry }));
  }

  private mostUsed(): RepositoryUsageEntry[] {
    return [...this.entries.values()].sort((a, b) => b.pulls - a.pulls || b.bytesServed - a.bytesServed);
  }

  private keepMostUsed(count: number): void {
    for (const dropped of this.mostUsed().slice(count)) this.entries.delete(dropped.repository);
  }
}
