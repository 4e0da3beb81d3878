/**
 * Repository <-> content links and manifest records in SQLite. Links are indexed both ways (the
 * primary key by repository, `links_by_digest` by digest); referrers are found through the
 * partial index on `subject` and then the link's primary key, so a repository with many
 * manifests costs nothing extra (distribution-spec "Listing Referrers").
 */
import type Database from 'better-sqlite3';
import type { LinkStore, ManifestIndex, ManifestRecord } from '../metadata-store.js';
import type { SqliteCatalog } from './sqlite-tags.js';
import { ENTRIES_PAGE_SIZE, prepareAll, type Statements, type Write, yieldToEventLoop } from './sqlite-statements.js';

export const LINK_SQL = {
  add: 'INSERT INTO links (repository, digest) VALUES (?, ?) ON CONFLICT DO NOTHING',
  has: 'SELECT 1 FROM links WHERE repository = ? AND digest = ?',
  repositories: 'SELECT repository FROM links WHERE digest = ? ORDER BY repository LIMIT ?',
  digests: 'SELECT digest FROM links WHERE repository = ? AND digest > ? ORDER BY digest LIMIT ?',
  remove: 'DELETE FROM links WHERE repository = ? AND digest = ?',
  removeDigest: 'DELETE FROM links WHERE digest = ?',
} as const;

export const MANIFEST_SQL = {
  put: `INSERT INTO manifests (digest, media_type, size, refs, subject, artifact_type, annotations) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (digest) DO UPDATE SET media_type = excluded.media_type, size = excluded.size, refs = excluded.refs,
      subject = excluded.subject, artifact_type = excluded.artifact_type, annotations = excluded.annotations`,
  get: 'SELECT digest, media_type, size, refs, subject, artifact_type, annotations FROM manifests WHERE digest = ?',
  delete: 'DELETE FROM manifests WHERE digest = ?',
  // CROSS JOIN fixes the loop order: manifests by subject outside, the link's primary key inside
  // (without statistics the planner would walk every link of the repository instead).
  referrers: `SELECT m.digest, m.media_type, m.size, m.refs, m.subject, m.artifact_type, m.annotations
    FROM manifests AS m CROSS JOIN links AS l ON l.repository = ? AND l.digest = m.digest
    WHERE m.subject = ?`,
  entries: `SELECT digest, media_type, size, refs, subject, artifact_type, annotations FROM manifests
    WHERE digest > ? ORDER BY digest LIMIT ?`,
} as const;

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  refs: string;
  subject: string | null;
  artifact_type: string | null;
  annotations: string | null;
}

export class SqliteLinks implements LinkStore {
  readonly #sql: Statements<typeof LINK_SQL>;
  readonly #add: (repository: string, digest: string) => void;
  readonly #write: Write;

  constructor(db: Database.Database, catalog: SqliteCatalog, write: Write) {
    this.#write = write;
    const sql = (this.#sql = prepareAll(db, LINK_SQL));
    this.#add = db.transaction((repository: string, digest: string) => {
      sql.add.run(repository, digest);
      catalog.addNow(repository);
    }).immediate;
  }

  async add(repository: string, digest: string): Promise<void> {
    await this.#write(() => this.#add(repository, digest));
  }

  async has(repository: string, digest: string): Promise<boolean> {
    return this.#sql.has.get(repository, digest) !== undefined;
  }

  async repositories(digest: string, limit: number): Promise<string[]> {
    return this.#sql.repositories.pluck().all(digest, limit) as string[];
  }

  async *digests(repository: string): AsyncIterable<string> {
    let after = '';
    for (;;) {
      const digests = this.#sql.digests.pluck().all(repository, after, ENTRIES_PAGE_SIZE) as string[];
      yield* digests;
      if (digests.length < ENTRIES_PAGE_SIZE) return;
      await yieldToEventLoop();
      after = digests[digests.length - 1]!;
    }
  }

  async remove(repository: string, digest: string): Promise<void> {
    await this.#write(() => this.#sql.remove.run(repository, digest));
  }

  async removeDigest(digest: string): Promise<void> {
    await this.#write(() => this.#sql.removeDigest.run(digest));
  }
}

export class SqliteManifests implements ManifestIndex {
  readonly #sql: Statements<typeof MANIFEST_SQL>;
  readonly #write: Write;

  constructor(db: Database.Database, write: Write) {
    this.#sql = prepareAll(db, MANIFEST_SQL);
    this.#write = write;
  }

  async put(record: ManifestRecord): Promise<void> {
    const annotations = record.annotations === undefined ? null : JSON.stringify(record.annotations);
    const references = JSON.stringify(record.references);
    await this.#write(() => this.#sql.put.run(record.digest, record.mediaType, record.size, references, record.subject ?? null, record.artifactType ?? null, annotations));
  }

  async get(digest: string): Promise<ManifestRecord | undefined> {
    const row = this.#sql.get.get(digest) as ManifestRow | undefined;
    return row && manifestOf(row);
  }

  async delete(digest: string): Promise<void> {
    await this.#write(() => this.#sql.delete.run(digest));
  }

  async referrers(repository: string, subject: string): Promise<ManifestRecord[]> {
    return (this.#sql.referrers.all(repository, subject) as ManifestRow[]).map(manifestOf);
  }

  async *entries(): AsyncIterable<ManifestRecord> {
    let after = '';
    for (;;) {
      const rows = this.#sql.entries.all(after, ENTRIES_PAGE_SIZE) as ManifestRow[];
      for (const row of rows) yield manifestOf(row);
      if (rows.length < ENTRIES_PAGE_SIZE) return;
      await yieldToEventLoop();
      after = rows[rows.length - 1]!.digest;
    }
  }
}

/** Optional fields that were absent stay absent (not null), as the record was put. */
function manifestOf(row: ManifestRow): ManifestRecord {
  const record: ManifestRecord = { digest: row.digest, mediaType: row.media_type, size: row.size, references: JSON.parse(row.refs) as string[] };
  if (row.subject !== null) record.subject = row.subject;
  if (row.artifact_type !== null) record.artifactType = row.artifact_type;
  if (row.annotations !== null) record.annotations = JSON.parse(row.annotations) as Record<string, string>;
  return record;
}
