/**
 * Statements are prepared once per connection (undici's SqliteCacheStore does the same): a
 * prepare parses and plans the SQL, which would otherwise cost more than most of the queries.
 * Every module keeps its SQL in one exported object, so the query-plan test can check each one.
 */
import type Database from 'better-sqlite3';
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
