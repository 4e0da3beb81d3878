/**
 * The blob index in SQLite. The LRU reads the partial index `blobs_lru` (used_at, digest) over
 * blobs that are not retained, so finding the next victims costs O(log n + limit) and retained
 * blobs are never even visited. Totals come from the `totals` row the triggers keep.
 */
import type Database from 'better-sqlite3';
import type { BlobIndex, BlobRecord } from '../metadata-store.js';
import { ENTRIES_PAGE_SIZE, prepareAll, type Statements, type Write, yieldToEventLoop } from './sqlite-statements.js';

export const BLOB_SQL = {
  put: `INSERT INTO blobs (digest, size, used_at, retained) VALUES (@digest, @size, COALESCE(@usedAt, @now), COALESCE(@retained, 0))
    ON CONFLICT (digest) DO UPDATE SET size = excluded.size, used_at = COALESCE(@usedAt, used_at), retained = COALESCE(@retained, retained)`,
  get: 'SELECT digest, size, used_at, retained FROM blobs WHERE digest = ?',
  touch: 'UPDATE blobs SET used_at = ? WHERE digest = ? AND used_at < ?',
  setRetained: 'UPDATE blobs SET retained = ? WHERE digest = ? AND retained <> ?',
  delete: 'DELETE FROM blobs WHERE digest = ?',
  leastRecentlyUsed: 'SELECT digest, size, used_at, retained FROM blobs WHERE retained = 0 ORDER BY used_at, digest LIMIT ?',
  totals: 'SELECT blobs, blob_bytes, retained_bytes FROM totals WHERE id = 1',
  entries: 'SELECT digest, size, used_at, retained FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?',
} as const;

interface BlobRow {
  digest: string;
  size: number;
  used_at: number;
  retained: number;
}

export class SqliteBlobs implements BlobIndex {
  readonly #sql: Statements<typeof BLOB_SQL>;
  readonly #touch: (digests: string[], at: number) => void;
  readonly #setRetained: (digests: string[], retained: boolean) => void;
  readonly #write: Write;

  constructor(db: Database.Database, write: Write) {
    this.#write = write;
    const sql = (this.#sql = prepareAll(db, BLOB_SQL));
    // Recency only moves forward: a late batch from a slow process must not make a blob look older.
    this.#touch = db.transaction((digests: string[], at: number) => {
      for (const digest of digests) sql.touch.run(at, digest, at);
    }).immediate;
    this.#setRetained = db.transaction((digests: string[], retained: boolean) => {
      const flag = retained ? 1 : 0;
      for (const digest of digests) sql.setRetained.run(flag, digest, flag);
    }).immediate;
  }

  async put(digest: string, size: number, options: { retained?: boolean; usedAt?: number } = {}): Promise<void> {
    const retained = options.retained === undefined ? null : options.retained ? 1 : 0;
    await this.#write(() => this.#sql.put.run({ digest, size, usedAt: options.usedAt ?? null, now: Date.now(), retained }));
  }

  async get(digest: string): Promise<BlobRecord | undefined> {
    const row = this.#sql.get.get(digest) as BlobRow | undefined;
    return row && blobOf(row);
  }

  async touch(digests: string[], at: number): Promise<void> {
    if (digests.length > 0) await this.#write(() => this.#touch(digests, at));
  }

  async setRetained(digests: string[], retained: boolean): Promise<void> {
    if (digests.length > 0) await this.#write(() => this.#setRetained(digests, retained));
  }

  async delete(digest: string): Promise<boolean> {
    return (await this.#write(() => this.#sql.delete.run(digest))).changes > 0;
  }

  async leastRecentlyUsed(limit: number): Promise<BlobRecord[]> {
    return (this.#sql.leastRecentlyUsed.all(limit) as BlobRow[]).map(blobOf);
  }

  async totals(): Promise<{ count: number; bytes: number; retainedBytes: number }> {
    const row = this.#sql.totals.get() as { blobs: number; blob_bytes: number; retained_bytes: number };
    return { count: row.blobs, bytes: row.blob_bytes, retainedBytes: row.retained_bytes };
  }

  async *entries(): AsyncIterable<BlobRecord> {
    let after = '';
    for (;;) {
      const rows = this.#sql.entries.all(after, ENTRIES_PAGE_SIZE) as BlobRow[];
      for (const row of rows) yield blobOf(row);
      if (rows.length < ENTRIES_PAGE_SIZE) return;
      await yieldToEventLoop();
      after = rows[rows.length - 1]!.digest;
    }
  }
}

function blobOf(row: BlobRow): BlobRecord {
  return { digest: row.digest, size: row.size, usedAt: row.used_at, retained: row.retained === 1 };
}
