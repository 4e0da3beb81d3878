/**
 * Pulls and cache hits per repository since start, for the status page's "top repositories".
 * In memory only; the map is bounded so that a client walking random names cannot grow it
 * without limit (the least used entries are dropped first).
 */
export interface RepositoryUsageEntry {
  /** `<upstream>/<repository>`. */
  repository: string;
  /** Pulls and hits as metrics/answer-accounting.ts defines them. */
  pulls: number;
  hits: number;
  bytesServed: number;
}

const MAX_REPOSITORIES = 1000;

export class RepositoryUsage {
  private readonly entries = new Map<string, RepositoryUsageEntry>();

  record(repository: string, event: { pull: boolean; hit: boolean; bytes: number }): void {
    let entry = this.entries.get(repository);
    if (!entry) {
      if (this.entries.size >= MAX_REPOSITORIES) this.dropLeastUsed();
      entry = { repository, pulls: 0, hits: 0, bytesServed: 0 };
      this.entries.set(repository, entry);
    }
    if (event.pull) entry.pulls += 1;
    if (event.hit) entry.hits += 1;
    entry.bytesServed += event.bytes;
  }

  /** The `count` repositories pulled most, then with the most bytes served. */
  top(count: number): RepositoryUsageEntry[] {
    return [...this.entries.values()]
      .sort((a, b) => b.pulls - a.pulls || b.bytesServed - a.bytesServed)
      .slice(0, count)
      .map((entry) => ({ ...entry }));
  }

  private dropLeastUsed(): void {
    const least = this.top(this.entries.size).at(-1);
    if (least) this.entries.delete(least.repository);
  }
}
