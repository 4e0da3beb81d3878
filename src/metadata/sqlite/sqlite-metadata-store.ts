/**
 * The embedded metadata store: one SQLite file (`<cache.dir>/metadata.db`) shared by every
 * process on the cache (serve, warm, import), through better-sqlite3.
 *
 * - WAL: readers never wait for the writer, and a commit is one append to the log.
 * - `synchronous = NORMAL`: in WAL mode a power cut can lose the last commits but never
 *   corrupts the file; metadata can be re-learnt from upstreams, so the fsync per commit that
 *   FULL costs is not worth it (https://www.sqlite.org/pragma.html#pragma_synchronous).
 * - A busy timeout: a writer waits for another process's write transaction instead of failing,
 *   asynchronously (sqlite-statements.ts writeWithRetries), since better-sqlite3's own wait
 *   would freeze the event loop for as long as the other process holds the lock.
 *
 * better-sqlite3 is synchronous; every statement here is an index lookup or a bounded range, so
 * none holds the event loop for long, and the async methods only wrap them. Compare undici's
 * lib/cache/sqlite-cache-store.js (WAL, NORMAL, a versioned schema, statements prepared once,
 * option errors that name the option).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { MetadataStore } from '../metadata-store.js';
import { assertInteger, MetadataOptionError } from '../metadata-errors.js';
import { SqliteBlobs } from './sqlite-blobs.js';
import { SqliteLinks, SqliteManifests } from './sqlite-links.js';
import { migrateSchema } from './sqlite-schema.js';
import { isBusy, writeWithRetries } from './sqlite-statements.js';
import { SqliteUploads, SqliteUsage, SqliteVerdicts } from './sqlite-sessions.js';
import { SqliteCatalog, SqliteTags } from './sqlite-tags.js';

export interface SqliteMetadataStoreOptions {
  /** The database file; it and its directory are created when missing. */
  filename: string;
  /** How long a write waits for another process's transaction, in ms (asynchronously); default 5,000. */
  busyTimeoutMs?: number;
  /** Access verdicts kept at most; the least recently set go first. Default 100,000. */
  maxVerdicts?: number;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_VERDICTS = 100_000;
/**
 * SQLite's own busy wait once the store is open. It blocks the thread, so it stays short; writes
 * wait for the lock asynchronously instead (writeWithRetries). Opening, which migrates the
 * schema, may wait the whole busyTimeoutMs: nothing is being served yet.
 */
const SYNC_BUSY_TIMEOUT_MS = 5;
/**
 * Pages the WAL may hold before a commit copies them into the database (SQLite's default is
 * 1,000, about 4 MiB). Each checkpoint syncs the file; an import whose tags land all over the
 * tag index dirties most of 1,000 pages per batch, so the default checkpointed (and synced)
 * after nearly every batch: 10,000 halved the time to load 200,000 tags (test/bench/metadata-scale.ts).
 */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
/** The WAL is truncated back to this after a checkpoint, so a big import does not leave a big file. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
/**
 * Each connection's page cache, in KiB (SQLite's `cache_size` takes a negative number as KiB).
 * better-sqlite3 builds SQLite with 16 MB; every `serve` worker has its own connection, while the
 * file's pages stay in the kernel's page cache, shared by all of them, so a page missed here is a
 * pread of memory. At 200,000 tags (test/bench/scenarios/scale.ts) 4 MiB cost no resolution rate
 * and saved about 10 MB of RSS per worker.
 */
const PAGE_CACHE_KIB = 4096;

export class SqliteMetadataStore implements MetadataStore {
  readonly tags: SqliteTags;
  readonly catalog: SqliteCatalog;
  readonly links: SqliteLinks;
  readonly manifests: SqliteManifests;
  readonly blobs: SqliteBlobs;
  readonly uploads: SqliteUploads;
  readonly verdicts: SqliteVerdicts;
  readonly usage: SqliteUsage;
  readonly filename: string;
  readonly #db: Database.Database;
  readonly #ping: Database.Statement;

  constructor(options: SqliteMetadataStoreOptions) {
    const { filename, busyTimeoutMs, maxVerdicts } = validateOptions(options);
    this.filename = filename;
    mkdirSync(path.dirname(path.resolve(filename)), { recursive: true });
    const db = (this.#db = new Database(filename, { timeout: busyTimeoutMs }));
    try {
      whileBusy(busyTimeoutMs, () => {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
        db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
        db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
        migrateSchema(db, filename, Date.now());
      });
      db.pragma(`busy_timeout = ${Math.min(SYNC_BUSY_TIMEOUT_MS, busyTimeoutMs)}`);
    } catch (error) {
      db.close();
      throw error;
    }
    this.#ping = db.prepare('SELECT 1');
    const write = writeWithRetries(filename, busyTimeoutMs);
    this.catalog = new SqliteCatalog(db, write);
    this.tags = new SqliteTags(db, this.catalog, write);
    this.links = new SqliteLinks(db, this.catalog, write);
    this.manifests = new SqliteManifests(db, write);
    this.blobs = new SqliteBlobs(db, write);
    this.uploads = new SqliteUploads(db, write);
    this.verdicts = new SqliteVerdicts(db, maxVerdicts, write);
    this.usage = new SqliteUsage(db, write);
  }

  async ping(): Promise<void> {
    this.#ping.get();
  }

  /**
   * Idempotent. `PRAGMA optimize` lets SQLite refresh the statistics its planner uses; it may
   * write, so with another process holding the write lock it fails with SQLITE_BUSY, and is
   * then left for the next close (a close must not fail over statistics).
   */
  async close(): Promise<void> {
    if (!this.#db.open) return;
    try {
      this.#db.pragma('optimize');
    } catch (error) {
      if (!isBusy(error)) throw error;
    } finally {
      this.#db.close();
    }
  }
}

const OPEN_RETRY_MS = 10;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `open` again while it fails with SQLITE_BUSY, for up to `budgetMs`. Switching a new file
 * to WAL is a write, and SQLite answers a connection that must write while another holds a
 * rollback-journal file's write lock with SQLITE_BUSY at once, without calling its busy handler
 * (waiting there could deadlock; https://www.sqlite.org/c3ref/busy_handler.html). The workers of
 * a first `serve` open a new metadata.db together, and one of them died of it ("cannot open the
 * cache"). Every step is idempotent (the migration is one IMMEDIATE transaction, rolled back on
 * failure), and nothing is served while the store opens, so the wait between tries may block.
 */
function whileBusy(budgetMs: number, open: () => void): void {
  const deadline = Date.now() + budgetMs;
  for (;;) {
    try {
      return open();
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) throw error;
      Atomics.wait(sleeper, 0, 0, OPEN_RETRY_MS);
    }
  }
}

function validateOptions(options: SqliteMetadataStoreOptions): Required<SqliteMetadataStoreOptions> {
  if (typeof options?.filename !== 'string' || options.filename === '') {
    throw new MetadataOptionError('filename', 'a non-empty path', options?.filename);
  }
  const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  assertInteger('busyTimeoutMs', busyTimeoutMs, 0);
  const maxVerdicts = options.maxVerdicts ?? DEFAULT_MAX_VERDICTS;
  assertInteger('maxVerdicts', maxVerdicts, 1);
  return { filename: options.filename, busyTimeoutMs, maxVerdicts };
}
