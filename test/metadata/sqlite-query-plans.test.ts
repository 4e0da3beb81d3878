/**
 * Every statement the SQLite store prepares is planned as an index or primary-key search, so the
 * hot paths stay O(log n) at 200,000 tags. An ordered index walk ("SCAN t USING INDEX") is
 * accepted only where the statement stops at a LIMIT (the LRU, the usage ranking, pruning).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_SQL } from '../../src/metadata/sqlite/sqlite-blobs.js';
import { LINK_SQL, MANIFEST_SQL } from '../../src/metadata/sqlite/sqlite-links.js';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { UPLOAD_SQL, USAGE_SQL, VERDICT_SQL } from '../../src/metadata/sqlite/sqlite-sessions.js';
import { CATALOG_SQL, TAG_SQL } from '../../src/metadata/sqlite/sqlite-tags.js';

let dir: string;
let db: Database.Database;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'metadata-plans-'));
  const filename = path.join(dir, 'metadata.db');
  await new SqliteMetadataStore({ filename }).close();
  db = new Database(filename);
});
afterAll(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

/** Plan rows of a statement, bound with nulls (the plan does not depend on the values). */
function planOf(sql: string): string[] {
  const statement = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const named = [...sql.matchAll(/@(\w+)/g)].map((match) => match[1]!);
  if (named.length > 0) return (statement.all(Object.fromEntries(named.map((name) => [name, null]))) as Array<{ detail: string }>).map((row) => row.detail);
  const positional = (sql.match(/\?/g) ?? []).length;
  return (statement.all(...Array<null>(positional).fill(null)) as Array<{ detail: string }>).map((row) => row.detail);
}

const statements = Object.entries({ TAG_SQL, CATALOG_SQL, LINK_SQL, MANIFEST_SQL, BLOB_SQL, UPLOAD_SQL, VERDICT_SQL, USAGE_SQL })
  .flatMap(([group, sql]) => Object.entries(sql).map(([name, text]) => ({ label: `${group}.${name}`, text })));

describe('SQLite metadata query plans', () => {
  it.each(statements)('$label searches an index, never scans a table', ({ text }) => {
    const plan = planOf(text);
    const limited = /\bLIMIT\b/.test(text);
    for (const step of plan) {
      expect(step, `${text}\n${plan.join('\n')}`).not.toMatch(/USE TEMP B-TREE/);
      if (!step.startsWith('SCAN ')) continue;
      // A one-row table (totals) or an ordered walk of an index cut short by LIMIT.
      const allowed = /^SCAN totals\b/.test(step) || (limited && /USING (COVERING )?INDEX/.test(step));
      expect(allowed, `${text}\n${plan.join('\n')}`).toBe(true);
    }
  });

  it('the hot lookups are primary-key or index searches', () => {
    expect(planOf(TAG_SQL.get)).toEqual(['SEARCH tags USING PRIMARY KEY (repository=? AND tag=?)']);
    expect(planOf(TAG_SQL.list)).toEqual(['SEARCH tags USING PRIMARY KEY (repository=? AND tag>?)']);
    expect(planOf(CATALOG_SQL.list)).toEqual(['SEARCH repositories USING PRIMARY KEY (name>?)']);
    expect(planOf(LINK_SQL.repositories)).toEqual(['SEARCH links USING COVERING INDEX links_by_digest (digest=?)']);
    expect(planOf(LINK_SQL.has)).toEqual(['SEARCH links USING PRIMARY KEY (repository=? AND digest=?)']);
    expect(planOf(BLOB_SQL.leastRecentlyUsed).join('\n')).toMatch(/blobs_lru/);
    expect(planOf(MANIFEST_SQL.referrers)).toEqual(['SEARCH m USING INDEX manifests_by_subject (subject=?)', 'SEARCH l USING PRIMARY KEY (repository=? AND digest=?)']);
  });
});
