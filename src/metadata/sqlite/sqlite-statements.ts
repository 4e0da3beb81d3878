/**
 * Statements are prepared once per connection (undici's SqliteCacheStore does the same): a
 * prepare parses and plans the SQL, which would otherwise cost more than most of the queries.
 * Every module keeps its SQL in one exported object, so the query-plan test can check each one.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { MetadataUnavailableError } from '../metadata-errors.js';
import type { PageRequest } from '../metadata-store.js';

// Rows come back as plain objects whose shape the SQL decides; each module names its row types.
export type Statement = Database.Statement<unknown[], any>;
export type Statements<Sql extends Record<string, string>> = { readonly [Name in keyof Sql]: Statement };

export function prepareAll<Sql extends Record<string, string>>(db: Database.Database, sql: Sql): Statements<Sql> {
  const statements: Record<string, Statement> = {};
  for (const [name, source] of Object.entries(sql)) statements[name] = db.prepare(source);
  return statements as Statements<Sql>;
}

/** `LIMIT -1` is SQLite's "no limit". */
export function limitOf(page: PageRequest | undefined): number {
  return page?.n ?? -1;
}

/** Names are never empty, so "after ''" is "from the start". */
export function afterOf(page: PageRequest | undefined): string {
  return page?.last ?? '';
}

/** Rows per round trip when a whole table is read as an async iterable. */
export const ENTRIES_PAGE_SIZE = 1_000;

/**
 * Gives timers and I/O a turn. better-sqlite3 returns synchronously, so a caller awaiting one
 * call after another (an import's batches, a walk of every entry) would otherwise stay in the
 * microtask queue and hold off every request until it is done.
 */
export function yieldToEventLoop(): Promise<void> {
  return nextTurn();
}

/** Runs a write (a statement or a transaction function), waiting its turn for the write lock. */
export type Write = <T>(work: () => T) => Promise<T>;

const MAX_RETRY_DELAY_MS = 25;

/**
 * Another process (warm, import) may hold the write lock for a whole batch. better-sqlite3's
 * busy handler would wait synchronously, freezing this process's event loop for that long; so
 * the connection's own busy timeout is kept tiny, and a write that finds the lock taken is
 * retried after an asynchronous backoff until `budgetMs` has passed. A failed attempt changed
 * nothing: BEGIN IMMEDIATE takes the lock before any statement runs, and better-sqlite3 rolls
 * a transaction function back when it throws.
 */
export function writeWithRetries(filename: string, budgetMs: number): Write {
  return async function write<T>(work: () => T): Promise<T> {
    const deadline = Date.now() + budgetMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS)) {
      try {
        return work();
      } catch (error) {
        if (!isBusy(error)) throw error;
        const left = deadline - Date.now();
        if (left <= 0) throw new MetadataUnavailableError(`${filename} stayed locked by another process for more than ${budgetMs} ms (busyTimeoutMs)`, error);
        await sleep(Math.min(delay, left));
      }
    }
  };
}

/** SQLite could not take a lock another connection holds (SQLITE_BUSY and its extended codes). */
export function isBusy(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
}
