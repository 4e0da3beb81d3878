/**
 * The metadata store in process memory: for tests and for commands that need no persistence.
 * Same contract as the SQLite and Redis stores (test/contract/metadata-store.contract.ts).
 */
import { LRUCache } from 'lru-cache';
import {
  emptyUsageCounts,
  type BlobIndex, type BlobRecord, type LinkStore, type ManifestIndex, type ManifestRecord, type MetadataStore,
  type PageRequest, type RepositoryCatalog, type TagEntry, type TagRecord, type TagStore, type UploadSession,
  type UploadStore, type UsageCounts, type UsageReport, type UsageStore, type Verdict, type VerdictStore,
} from '../metadata-store.js';

/** Verdicts kept at most; the least recently set are forgotten first. */
const MAX_VERDICTS = 100_000;

export class MemoryMetadataStore implements MetadataStore {
  readonly catalog = new MemoryCatalog();
  readonly tags = new MemoryTags(this.catalog);
  readonly links = new MemoryLinks(this.catalog);
  readonly manifests = new MemoryManifests(this.links);
  readonly blobs = new MemoryBlobs();
  readonly uploads = new MemoryUploads();
  readonly verdicts = new MemoryVerdicts();
  readonly usage = new MemoryUsage();

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Sorted names after `last`, at most `n` (code point order; names are ASCII by grammar). */
export function page(names: Iterable<string>, request: PageRequest = {}): string[] {
  const sorted = [...names].sort(compareNames);
  const after = request.last === undefined ? sorted : sorted.filter((name) => name > request.last!);
  return request.n === undefined ? after : after.slice(0, request.n);
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

class MemoryCatalog implements RepositoryCatalog {
  readonly names = new Set<string>();
  async add(repository: string): Promise<void> {
    this.names.add(repository);
  }
  async list(request?: PageRequest): Promise<string[]> {
    return page(this.names, request);
  }
  async remove(repository: string): Promise<void> {
    this.names.delete(repository);
  }
}

class MemoryTags implements TagStore {
  readonly #byRepository = new Map<string, Map<string, TagRecord>>();
  constructor(private readonly catalog: MemoryCatalog) {}

  async get(repository: string, tag: string): Promise<TagRecord | undefined> {
    const record = this.#byRepository.get(repository)?.get(tag);
    return record && { ...record };
  }
  async set(repository: string, tag: string, record: TagRecord): Promise<void> {
    let tags = this.#byRepository.get(repository);
    if (!tags) this.#byRepository.set(repository, (tags = new Map()));
    tags.set(tag, { ...record });
    await this.catalog.add(repository);
  }
  async setMany(entries: TagEntry[]): Promise<void> {
    for (const entry of entries) await this.set(entry.repository, entry.tag, entry.record);
  }
  async delete(repository: string, tag: string): Promise<boolean> {
    return this.#byRepository.get(repository)?.delete(tag) ?? false;
  }
  async list(repository: string, request?: PageRequest): Promise<string[]> {
    return page(this.#byRepository.get(repository)?.keys() ?? [], request);
  }
  async *entries(): AsyncIterable<TagEntry> {
    for (const [repository, tags] of this.#byRepository) {
      for (const [tag, record] of tags) yield { repository, tag, record: { ...record } };
    }
  }
  async count(): Promise<{ tags: number; repositories: number }> {
    let tags = 0;
    let repositories = 0;
    for (const entries of this.#byRepository.values()) {
      tags += entries.size;
      if (entries.size > 0) repositories += 1;
    }
    return { tags, repositories };
  }
}

class MemoryLinks implements LinkStore {
  readonly byRepository = new Map<string, Set<string>>();
  readonly #byDigest = new Map<string, Set<string>>();
  constructor(private readonly catalog: MemoryCatalog) {}

  async add(repository: string, digest: string): Promise<void> {
    addTo(this.byRepository, repository, digest);
    addTo(this.#byDigest, digest, repository);
    await this.catalog.add(repository);
  }
  async has(repository: string, digest: string): Promise<boolean> {
    return this.byRepository.get(repository)?.has(digest) ?? false;
  }
  async repositories(digest: string, limit: number): Promise<string[]> {
    return [...(this.#byDigest.get(digest) ?? [])].slice(0, limit);
  }
  async *digests(repository: string): AsyncIterable<string> {
    yield* [...(this.byRepository.get(repository) ?? [])];
  }
  async remove(repository: string, digest: string): Promise<void> {
    removeFrom(this.byRepository, repository, digest);
    removeFrom(this.#byDigest, digest, repository);
  }
  async removeDigest(digest: string): Promise<void> {
    for (const repository of this.#byDigest.get(digest) ?? []) removeFrom(this.byRepository, repository, digest);
    this.#byDigest.delete(digest);
  }
}

class MemoryManifests implements ManifestIndex {
  readonly #records = new Map<string, ManifestRecord>();
  constructor(private readonly links: MemoryLinks) {}

  async put(record: ManifestRecord): Promise<void> {
    this.#records.set(record.digest, structuredClone(record));
  }
  async get(digest: string): Promise<ManifestRecord | undefined> {
    const record = this.#records.get(digest);
    return record && structuredClone(record);
  }
  async delete(digest: string): Promise<void> {
    this.#records.delete(digest);
  }
  async referrers(repository: string, subject: string): Promise<ManifestRecord[]> {
    const linked = this.links.byRepository.get(repository) ?? new Set<string>();
    return [...this.#records.values()].filter((record) => record.subject === subject && linked.has(record.digest)).map((record) => structuredClone(record));
  }
  async *entries(): AsyncIterable<ManifestRecord> {
    for (const record of [...this.#records.values()]) yield structuredClone(record);
  }
}

class MemoryBlobs implements BlobIndex {
  readonly #records = new Map<string, BlobRecord>();

  async put(digest: string, size: number, options: { retained?: boolean; usedAt?: number } = {}): Promise<void> {
    const existing = this.#records.get(digest);
    this.#records.set(digest, {
      digest,
      size,
      usedAt: options.usedAt ?? existing?.usedAt ?? Date.now(),
      retained: options.retained ?? existing?.retained ?? false,
    });
  }
  async get(digest: string): Promise<BlobRecord | undefined> {
    const record = this.#records.get(digest);
    return record && { ...record };
  }
  async touch(digests: string[], at: number): Promise<void> {
    for (const digest of digests) {
      const record = this.#records.get(digest);
      if (record) record.usedAt = Math.max(record.usedAt, at);
    }
  }
  async setRetained(digests: string[], retained: boolean): Promise<void> {
    for (const digest of digests) {
      const record = this.#records.get(digest);
      if (record) record.retained = retained;
    }
  }
  async delete(digest: string): Promise<boolean> {
    return this.#records.delete(digest);
  }
  async leastRecentlyUsed(limit: number): Promise<BlobRecord[]> {
    return [...this.#records.values()]
      .filter((record) => !record.retained)
      .sort((a, b) => a.usedAt - b.usedAt || compareNames(a.digest, b.digest))
      .slice(0, limit)
      .map((record) => ({ ...record }));
  }
  async totals(): Promise<{ count: number; bytes: number; retainedBytes: number }> {
    let bytes = 0;
    let retainedBytes = 0;
    for (const record of this.#records.values()) {
      bytes += record.size;
      if (record.retained) retainedBytes += record.size;
    }
    return { count: this.#records.size, bytes, retainedBytes };
  }
  async *entries(): AsyncIterable<BlobRecord> {
    for (const record of [...this.#records.values()]) yield { ...record };
  }
}

class MemoryUploads implements UploadStore {
  readonly #sessions = new Map<string, UploadSession>();
  readonly #claims = new Map<string, { holder: string; until: number }>();
  async claim(id: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const current = this.#claims.get(id);
    if (current && current.holder !== holder && current.until > now) return false;
    this.#claims.set(id, { holder, until: now + ttlMs });
    return true;
  }
  async unclaim(id: string, holder: string): Promise<void> {
    if (this.#claims.get(id)?.holder === holder) this.#claims.delete(id);
  }
  async put(session: UploadSession): Promise<void> {
    this.#sessions.set(session.id, { ...session });
  }
  async get(id: string): Promise<UploadSession | undefined> {
    const session = this.#sessions.get(id);
    return session && { ...session };
  }
  async delete(id: string): Promise<void> {
    this.#sessions.delete(id);
    this.#claims.delete(id);
  }
  async olderThan(before: number): Promise<UploadSession[]> {
    return [...this.#sessions.values()].filter((session) => session.updatedAt < before).map((session) => ({ ...session }));
  }
}

class MemoryVerdicts implements VerdictStore {
  readonly #verdicts = new LRUCache<string, Verdict>({ max: MAX_VERDICTS });
  async get(repository: string): Promise<Verdict | undefined> {
    const verdict = this.#verdicts.get(repository);
    return verdict && { ...verdict };
  }
  async set(repository: string, verdict: Verdict, ttlMs: number): Promise<void> {
    // lru-cache reads a ttl of 0 as "never expires"; the contract says kept for ttlMs, i.e. not at all.
    if (!(ttlMs > 0)) this.#verdicts.delete(repository);
    else this.#verdicts.set(repository, { ...verdict }, { ttl: ttlMs });
  }
}

class MemoryUsage implements UsageStore {
  readonly #since = Date.now();
  readonly #counts = new Map<string, UsageCounts>();
  async add(batch: Map<string, UsageCounts>): Promise<void> {
    for (const [repository, counts] of batch) {
      let stored = this.#counts.get(repository);
      if (!stored) this.#counts.set(repository, (stored = emptyUsageCounts()));
      stored.pulls += counts.pulls;
      stored.hits += counts.hits;
      stored.misses += counts.misses;
    }
  }
  async report(top: number): Promise<UsageReport> {
    const totals = emptyUsageCounts();
    for (const counts of this.#counts.values()) {
      totals.pulls += counts.pulls;
      totals.hits += counts.hits;
      totals.misses += counts.misses;
    }
    const repositories = [...this.#counts]
      .map(([repository, counts]) => ({ repository, ...counts }))
      .sort((a, b) => b.pulls - a.pulls || b.hits + b.misses - (a.hits + a.misses) || compareNames(a.repository, b.repository))
      .slice(0, top);
    return { since: this.#since, totals, repositories };
  }
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
