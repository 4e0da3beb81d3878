/**
 * Imports the metadata a release before the SQLite store wrote (legacy-json-files.ts describes
 * the files) into a MetadataStore, so a cache filled by that release serves the same images
 * after the upgrade: tags with their checkedAt, the catalog, usage counts, access verdicts that
 * have not expired, and content sources as links.
 *
 * Each file is renamed `<name>.migrated-<time>` once everything in it is in the store, never
 * deleted. Safe to interrupt: a file still under its old name is imported again on the next
 * run, and every import is idempotent (tags and verdicts are upserts, catalog and link adds are
 * set adds); usage counts, the one thing that adds up, are imported only into a store that
 * counts nothing yet, and one batch adds them all atomically. A file that does not parse is
 * renamed `<name>.unreadable-<time>` for a human to look at, so it does not block every start.
 */
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { readLegacyNamespace, readLegacySources, type LegacyEntry } from './legacy-json-files.js';
import type { MetadataStore, TagEntry, TagRecord, UsageCounts, Verdict } from './metadata-store.js';

export interface MigrationReport {
  /** Renamed after import, as `<old path> -> <new path>` relative to the cache directory. */
  migrated: string[];
  /** Did not parse; renamed `.unreadable-<time>`. */
  unreadable: string[];
  tags: number;
  /** Names added to the catalog. */
  repositories: number;
  /** Repositories whose usage counts were added; 0 with usageSkipped when the store already counted. */
  usageRepositories: number;
  usageSkipped: boolean;
  verdicts: number;
  /** (repository, digest) pairs from content sources. */
  links: number;
  /** Entries left out: expired, malformed or torn. */
  skipped: number;
}

export interface MigrationOptions {
  /** Tags per `tags.setMany` transaction; default 1,000. */
  batchSize?: number;
  /** TTL of imported verdicts that had none (the old store kept them forever); default 7 days. */
  verdictTtlMs?: number;
  now?: number;
}

const DEFAULT_BATCH_SIZE = 1_000;
const DEFAULT_VERDICT_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export async function migrateJsonMetadata(cacheDir: string, store: MetadataStore, options: MigrationOptions = {}): Promise<MigrationReport> {
  const now = options.now ?? Date.now();
  const report: MigrationReport = { migrated: [], unreadable: [], tags: 0, repositories: 0, usageRepositories: 0, usageSkipped: false, verdicts: 0, links: 0, skipped: 0 };
  const migration = new Migration(cacheDir, store, report, now, options);
  await migration.namespace('tags', (entries) => migration.importTags(entries));
  await migration.namespace('repositories', (entries) => migration.importCatalog(entries));
  await migration.namespace('usage', (entries) => migration.importUsage(entries));
  await migration.namespace('access', (entries) => migration.importVerdicts(entries));
  await migration.importSources();
  return report;
}

class Migration {
  readonly #stamp: string;

  constructor(
    private readonly cacheDir: string,
    private readonly store: MetadataStore,
    private readonly report: MigrationReport,
    private readonly now: number,
    private readonly options: MigrationOptions,
  ) {
    this.#stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  }

  /** Reads `metadata/<namespace>.json`, imports it, then renames it. */
  async namespace(namespace: string, load: (entries: LegacyEntry[]) => Promise<void>): Promise<void> {
    const file = path.join(this.cacheDir, 'metadata', `${namespace}.json`);
    let content;
    try {
      content = await readLegacyNamespace(file, namespace, this.now);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      await this.#moveAside(file, 'unreadable', this.report.unreadable);
      return;
    }
    if (!content) return;
    this.report.skipped += content.skipped;
    await load(content.entries);
    await this.#moveAside(file, 'migrated', this.report.migrated);
  }

  async importTags(entries: LegacyEntry[]): Promise<void> {
    const batchSize = this.options.batchSize ?? DEFAULT_BATCH_SIZE;
    const batch: TagEntry[] = [];
    for (const entry of entries) {
      const tag = tagEntryOf(entry);
      if (!tag) this.report.skipped += 1;
      else batch.push(tag);
      if (batch.length >= batchSize) await this.#setTags(batch.splice(0));
    }
    await this.#setTags(batch);
  }

  /** `*catalog` lists every name; each tag list's key is a name too (lists older than the catalog). */
  async importCatalog(entries: LegacyEntry[]): Promise<void> {
    const names = new Set<string>();
    for (const { key, value } of entries) {
      if (key !== '*catalog') names.add(key);
      else if (Array.isArray(value)) for (const name of value) if (typeof name === 'string' && name !== '') names.add(name);
    }
    for (const name of names) await this.store.catalog.add(name);
    this.report.repositories += names.size;
  }

  async importUsage(entries: LegacyEntry[]): Promise<void> {
    const record = entries.find((entry) => entry.key === 'usage')?.value as { repositories?: Record<string, Partial<UsageCounts>> } | undefined;
    const batch = new Map<string, UsageCounts>();
    for (const [repository, counts] of Object.entries(record?.repositories ?? {})) {
      batch.set(repository, { pulls: count(counts.pulls), hits: count(counts.hits), misses: count(counts.misses) });
    }
    if (batch.size === 0) return;
    const { totals } = await this.store.usage.report(0);
    if (totals.pulls + totals.hits + totals.misses > 0) {
      // Already imported by a run that stopped before the rename, or counted since: adding would count twice.
      this.report.usageSkipped = true;
      return;
    }
    await this.store.usage.add(batch);
    this.report.usageRepositories += batch.size;
  }

  async importVerdicts(entries: LegacyEntry[]): Promise<void> {
    const defaultTtlMs = this.options.verdictTtlMs ?? DEFAULT_VERDICT_TTL_MS;
    for (const { key, value, expires } of entries) {
      const verdict = value as Partial<Verdict>;
      if (typeof verdict.readable !== 'boolean' || typeof verdict.checkedAt !== 'number') {
        this.report.skipped += 1;
        continue;
      }
      await this.store.verdicts.set(key, { readable: verdict.readable, checkedAt: verdict.checkedAt }, expires === undefined ? defaultTtlMs : expires - this.now);
      this.report.verdicts += 1;
    }
  }

  async importSources(): Promise<void> {
    const dir = path.join(this.cacheDir, 'sources');
    const onSkipped = () => void (this.report.skipped += 1);
    for await (const { digest, repositories } of readLegacySources(dir, onSkipped)) {
      for (const repository of repositories) await this.store.links.add(repository, digest);
      this.report.links += repositories.length;
    }
    await this.#moveAside(dir, 'migrated', this.report.migrated);
  }

  async #setTags(batch: TagEntry[]): Promise<void> {
    if (batch.length === 0) return;
    await this.store.tags.setMany(batch);
    this.report.tags += batch.length;
  }

  /** Renames; a path already gone (another process migrated it, or there was none) is fine. */
  async #moveAside(from: string, suffix: 'migrated' | 'unreadable', into: string[]): Promise<void> {
    const to = `${from}.${suffix}-${this.#stamp}`;
    try {
      await rename(from, to);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    into.push(`${path.relative(this.cacheDir, from)} -> ${path.relative(this.cacheDir, to)}`);
  }
}

/** `<upstream>/<repository>:<tag>`: tags cannot contain ':', upstream names can (`localhost:5000`). */
function tagEntryOf({ key, value }: LegacyEntry): TagEntry | undefined {
  const colon = key.lastIndexOf(':');
  const record = value as Partial<TagRecord>;
  if (colon <= 0 || colon === key.length - 1) return undefined;
  if (typeof record.digest !== 'string' || typeof record.mediaType !== 'string' || typeof record.size !== 'number' || typeof record.checkedAt !== 'number') return undefined;
  return {
    repository: key.slice(0, colon),
    tag: key.slice(colon + 1),
    record: { digest: record.digest, mediaType: record.mediaType, size: record.size, checkedAt: record.checkedAt },
  };
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0;
}
