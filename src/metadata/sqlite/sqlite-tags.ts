/**
 * Tags and the repository catalog in SQLite. A tag page is a range search on the (repository,
 * tag) primary key, so `tags/list?n=50&last=...` costs O(log n + 50) however many tags there
 * are; the BINARY collation compares UTF-8 bytes, which is code point order (distribution-spec
 * "Listing Tags": lexical order).
 */
import type Database from 'better-sqlite3';
import type { PageRequest, RepositoryCatalog, TagEntry, TagRecord, TagStore } from '../metadata-store.js';
import { afterOf, ENTRIES_PAGE_SIZE, limitOf, prepareAll, type Statements, type Write, yieldToEventLoop } from './sqlite-statements.js';

export const TAG_SQL = {
  get: 'SELECT digest, media_type, size, checked_at FROM tags WHERE repository = ? AND tag = ?',
  upsert: `INSERT INTO tags (repository, tag, digest, media_type, size, checked_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (repository, tag) DO UPDATE SET
      digest = excluded.digest, media_type = excluded.media_type, size = excluded.size, checked_at = excluded.checked_at`,
  delete: 'DELETE FROM tags WHERE repository = ? AND tag = ?',
  list: 'SELECT tag FROM tags WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?',
  entries: `SELECT repository, tag, digest, media_type, size, checked_at FROM tags
    WHERE (repository, tag) > (?, ?) ORDER BY repository, tag LIMIT ?`,
  count: 'SELECT tags, tag_repositories FROM totals WHERE id = 1',
} as const;

export const CATALOG_SQL = {
  add: 'INSERT INTO repositories (name) VALUES (?) ON CONFLICT DO NOTHING',
  list: 'SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?',
  remove: 'DELETE FROM repositories WHERE name = ?',
} as const;

interface TagRow {
  repository: string;
  tag: string;
  digest: string;
  media_type: string;
  size: number;
  checked_at: number;
}

export class SqliteCatalog implements RepositoryCatalog {
  readonly #sql: Statements<typeof CATALOG_SQL>;
  readonly #write: Write;

  constructor(db: Database.Database, write: Write) {
    this.#sql = prepareAll(db, CATALOG_SQL);
    this.#write = write;
  }

  /** Synchronous, for other stores' transactions (a tag or link adds its repository). */
  addNow(repository: string): void {
    this.#sql.add.run(repository);
  }

  async add(repository: string): Promise<void> {
    await this.#write(() => this.addNow(repository));
  }

  async list(page?: PageRequest): Promise<string[]> {
    return this.#sql.list.pluck().all(afterOf(page), limitOf(page)) as string[];
  }

  async remove(repository: string): Promise<void> {
    await this.#write(() => this.#sql.remove.run(repository));
  }
}

export class SqliteTags implements TagStore {
  readonly #sql: Statements<typeof TAG_SQL>;
  readonly #setOne: (repository: string, tag: string, record: TagRecord) => void;
  readonly #setMany: (entries: TagEntry[]) => void;
  readonly #write: Write;

  constructor(db: Database.Database, catalog: SqliteCatalog, write: Write) {
    this.#write = write;
    const sql = (this.#sql = prepareAll(db, TAG_SQL));
    const upsert = (repository: string, tag: string, record: TagRecord): void => {
      sql.upsert.run(repository, tag, record.digest, record.mediaType, record.size, record.checkedAt);
    };
    // IMMEDIATE takes the write lock up front: a deferred transaction that upgrades from read to
    // write can fail with SQLITE_BUSY at once in WAL mode instead of waiting for busy_timeout.
    this.#setOne = db.transaction((repository: string, tag: string, record: TagRecord) => {
      upsert(repository, tag, record);
      catalog.addNow(repository);
    }).immediate;
    this.#setMany = db.transaction((entries: TagEntry[]) => {
      const repositories = new Set<string>();
      for (const entry of entries) {
        upsert(entry.repository, entry.tag, entry.record);
        repositories.add(entry.repository);
      }
      for (const repository of repositories) catalog.addNow(repository);
    }).immediate;
  }

  async get(repository: string, tag: string): Promise<TagRecord | undefined> {
    const row = this.#sql.get.get(repository, tag) as TagRow | undefined;
    return row && recordOf(row);
  }

  async set(repository: string, tag: string, record: TagRecord): Promise<void> {
    await this.#write(() => this.#setOne(repository, tag, record));
  }

  /** One transaction per call: the caller sizes batches so no call holds the write lock for long. */
  async setMany(entries: TagEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.#write(() => this.#setMany(entries));
    await yieldToEventLoop();
  }

  async delete(repository: string, tag: string): Promise<boolean> {
    return (await this.#write(() => this.#sql.delete.run(repository, tag))).changes > 0;
  }

  async list(repository: string, page?: PageRequest): Promise<string[]> {
    return this.#sql.list.pluck().all(repository, afterOf(page), limitOf(page)) as string[];
  }

  /** Pages by key, never holding a statement open across an await (the connection is shared). */
  async *entries(): AsyncIterable<TagEntry> {
    let after = ['', ''];
    for (;;) {
      const rows = this.#sql.entries.all(after[0], after[1], ENTRIES_PAGE_SIZE) as TagRow[];
      for (const row of rows) yield { repository: row.repository, tag: row.tag, record: recordOf(row) };
      if (rows.length < ENTRIES_PAGE_SIZE) return;
      await yieldToEventLoop();
      const last = rows[rows.length - 1]!;
      after = [last.repository, last.tag];
    }
  }

  async count(): Promise<{ tags: number; repositories: number }> {
    const row = this.#sql.count.get() as { tags: number; tag_repositories: number };
    return { tags: row.tags, repositories: row.tag_repositories };
  }
}

function recordOf(row: TagRow): TagRecord {
  return { digest: row.digest, mediaType: row.media_type, size: row.size, checkedAt: row.checked_at };
}
