/**
 * Upload sessions, access verdicts and usage counters in SQLite: the small, per-request records.
 *
 * Verdicts are bounded two ways: each set prunes a few expired rows (through the expiry index),
 * and past `maxVerdicts` rows the least recently set are forgotten, as the VerdictStore
 * contract allows; a forgotten verdict costs one anonymous probe. Usage counters are single
 * `pulls = pulls + ?` upserts, so processes sharing the file add up without reading first.
 */
import type Database from 'better-sqlite3';
import {
  type UploadSession, type UploadStore, type UsageCounts, type UsageReport, type UsageStore, type Verdict, type VerdictStore,
} from '../metadata-store.js';
import { prepareAll, type Statements, type Write } from './sqlite-statements.js';

export const UPLOAD_SQL = {
  put: `INSERT INTO uploads (id, repository, writer_id, received, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET repository = excluded.repository, writer_id = excluded.writer_id,
      received = excluded.received, started_at = excluded.started_at, updated_at = excluded.updated_at`,
  get: 'SELECT id, repository, writer_id, received, started_at, updated_at FROM uploads WHERE id = ?',
  delete: 'DELETE FROM uploads WHERE id = ?',
  deleteClaim: 'DELETE FROM upload_claims WHERE id = ?',
  olderThan: 'SELECT id, repository, writer_id, received, started_at, updated_at FROM uploads WHERE updated_at < ? ORDER BY updated_at',
  // One statement, so two processes cannot both find the session free.
  claim: `INSERT INTO upload_claims (id, holder, until) VALUES (?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, until = excluded.until
    WHERE upload_claims.holder = excluded.holder OR upload_claims.until <= ?`,
  unclaim: 'DELETE FROM upload_claims WHERE id = ? AND holder = ?',
} as const;

export const VERDICT_SQL = {
  get: 'SELECT readable, checked_at FROM verdicts WHERE repository = ? AND expires_at > ?',
  set: `INSERT INTO verdicts (repository, readable, checked_at, set_at, expires_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (repository) DO UPDATE SET readable = excluded.readable, checked_at = excluded.checked_at,
      set_at = excluded.set_at, expires_at = excluded.expires_at`,
  delete: 'DELETE FROM verdicts WHERE repository = ?',
  pruneExpired: `DELETE FROM verdicts WHERE repository IN
    (SELECT repository FROM verdicts WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`,
  pruneOldest: 'DELETE FROM verdicts WHERE repository IN (SELECT repository FROM verdicts ORDER BY set_at LIMIT ?)',
  count: 'SELECT verdicts FROM totals WHERE id = 1',
} as const;

export const USAGE_SQL = {
  add: `INSERT INTO usage (repository, pulls, hits, misses) VALUES (?, ?, ?, ?)
    ON CONFLICT (repository) DO UPDATE SET pulls = pulls + excluded.pulls, hits = hits + excluded.hits, misses = misses + excluded.misses`,
  totals: 'SELECT pulls, hits, misses FROM totals WHERE id = 1',
  since: "SELECT value FROM settings WHERE name = 'usage_since'",
  top: 'SELECT repository, pulls, hits, misses FROM usage ORDER BY pulls DESC, hits + misses DESC, repository LIMIT ?',
} as const;

/** Rows one set may prune, so no set does unbounded work. */
const PRUNE_BATCH = 100;

interface UploadRow {
  id: string;
  repository: string;
  writer_id: string;
  received: number;
  started_at: number;
  updated_at: number;
}

export class SqliteUploads implements UploadStore {
  readonly #sql: Statements<typeof UPLOAD_SQL>;
  readonly #write: Write;

  constructor(db: Database.Database, write: Write) {
    this.#sql = prepareAll(db, UPLOAD_SQL);
    this.#write = write;
  }

  async put(session: UploadSession): Promise<void> {
    await this.#write(() => this.#sql.put.run(session.id, session.repository, session.writerId, session.offset, session.startedAt, session.updatedAt));
  }

  async get(id: string): Promise<UploadSession | undefined> {
    const row = this.#sql.get.get(id) as UploadRow | undefined;
    return row && sessionOf(row);
  }

  async delete(id: string): Promise<void> {
    await this.#write(() => {
      this.#sql.delete.run(id);
      this.#sql.deleteClaim.run(id);
    });
  }

  async olderThan(before: number): Promise<UploadSession[]> {
    return (this.#sql.olderThan.all(before) as UploadRow[]).map(sessionOf);
  }

  async claim(id: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return this.#write(() => this.#sql.claim.run(id, holder, now + ttlMs, now).changes === 1);
  }

  async unclaim(id: string, holder: string): Promise<void> {
    await this.#write(() => this.#sql.unclaim.run(id, holder));
  }
}

function sessionOf(row: UploadRow): UploadSession {
  return { id: row.id, repository: row.repository, writerId: row.writer_id, offset: row.received, startedAt: row.started_at, updatedAt: row.updated_at };
}

export class SqliteVerdicts implements VerdictStore {
  readonly #sql: Statements<typeof VERDICT_SQL>;
  readonly #set: (repository: string, verdict: Verdict, ttlMs: number) => void;
  readonly #write: Write;

  constructor(db: Database.Database, maxVerdicts: number, write: Write) {
    this.#write = write;
    const sql = (this.#sql = prepareAll(db, VERDICT_SQL));
    this.#set = db.transaction((repository: string, verdict: Verdict, ttlMs: number) => {
      const now = Date.now();
      sql.set.run(repository, verdict.readable ? 1 : 0, verdict.checkedAt, now, now + ttlMs);
      sql.pruneExpired.run(now, PRUNE_BATCH);
      const excess = (sql.count.pluck().get() as number) - maxVerdicts;
      if (excess > 0) sql.pruneOldest.run(Math.min(excess, PRUNE_BATCH));
    }).immediate;
  }

  async get(repository: string): Promise<Verdict | undefined> {
    const row = this.#sql.get.get(repository, Date.now()) as { readable: number; checked_at: number } | undefined;
    return row && { readable: row.readable === 1, checkedAt: row.checked_at };
  }

  async set(repository: string, verdict: Verdict, ttlMs: number): Promise<void> {
    // A verdict that may not be kept at all is forgotten now, as if it had expired.
    if (!(ttlMs > 0)) await this.#write(() => this.#sql.delete.run(repository));
    else await this.#write(() => this.#set(repository, verdict, ttlMs));
  }
}

export class SqliteUsage implements UsageStore {
  readonly #sql: Statements<typeof USAGE_SQL>;
  readonly #add: (batch: Map<string, UsageCounts>) => void;
  readonly #write: Write;

  constructor(db: Database.Database, write: Write) {
    this.#write = write;
    const sql = (this.#sql = prepareAll(db, USAGE_SQL));
    this.#add = db.transaction((batch: Map<string, UsageCounts>) => {
      for (const [repository, counts] of batch) sql.add.run(repository, counts.pulls, counts.hits, counts.misses);
    }).immediate;
  }

  async add(batch: Map<string, UsageCounts>): Promise<void> {
    if (batch.size > 0) await this.#write(() => this.#add(batch));
  }

  async report(top: number): Promise<UsageReport> {
    const totals = this.#sql.totals.get() as UsageCounts;
    const since = this.#sql.since.pluck().get() as number;
    const repositories = this.#sql.top.all(top) as UsageReport['repositories'];
    return { since, totals: { pulls: totals.pulls, hits: totals.hits, misses: totals.misses }, repositories };
  }
}
