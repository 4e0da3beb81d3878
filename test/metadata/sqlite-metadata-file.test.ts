/**
 * What the SQLite store promises beyond the contract: the file (WAL, schema version, refusing a
 * newer file), waiting for another connection's write lock, option errors that name the
 * option, and verdicts bounded by count and pruned when expired.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MetadataOptionError, MetadataSchemaError } from '../../src/metadata/metadata-errors.js';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { SCHEMA_VERSION } from '../../src/metadata/sqlite/sqlite-schema.js';
import { tagRecord } from '../contract/metadata-fixtures.js';

let dir: string;
let filename: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'metadata-file-'));
  filename = path.join(dir, 'nested', 'metadata.db');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function inspect<T>(query: (db: Database.Database) => T): T {
  const db = new Database(filename, { readonly: true });
  try {
    return query(db);
  } finally {
    db.close();
  }
}

describe('SQLite metadata file', () => {
  it('creates the file and its directory, in WAL mode, at the current schema version; data outlives the store', async () => {
    const store = new SqliteMetadataStore({ filename });
    await store.tags.set('docker.io/library/alpine', 'latest', tagRecord(1));
    await store.close();
    expect(inspect((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(SCHEMA_VERSION);
    const reopened = new SqliteMetadataStore({ filename });
    expect(await reopened.tags.get('docker.io/library/alpine', 'latest')).toStrictEqual(tagRecord(1));
    expect(await reopened.tags.count()).toEqual({ tags: 1, repositories: 1 });
    await reopened.close();
  });

  it('refuses a file from a newer release, naming the file and both versions, and leaves it untouched', async () => {
    await new SqliteMetadataStore({ filename }).close();
    const db = new Database(filename);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new SqliteMetadataStore({ filename })).toThrow(MetadataSchemaError);
    expect(() => new SqliteMetadataStore({ filename })).toThrow(`${filename} has schema version ${SCHEMA_VERSION + 1}, newer than this release supports (${SCHEMA_VERSION})`);
    expect(inspect((check) => check.pragma('user_version', { simple: true }))).toBe(SCHEMA_VERSION + 1);
  });

  it('names the option and the value received when an option is wrong', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ filename: '' }, 'expected filename to be a non-empty path, got ""'],
      [{}, 'expected filename to be a non-empty path, got undefined'],
      [{ filename, busyTimeoutMs: -1 }, 'expected busyTimeoutMs to be a non-negative integer, got -1'],
      [{ filename, busyTimeoutMs: 1.5 }, 'expected busyTimeoutMs to be a non-negative integer, got 1.5'],
      [{ filename, maxVerdicts: 0 }, 'expected maxVerdicts to be an integer of at least 1, got 0'],
      [{ filename, maxVerdicts: '10' }, 'expected maxVerdicts to be an integer of at least 1, got "10"'],
    ];
    for (const [options, message] of cases) {
      expect(() => new SqliteMetadataStore(options as never)).toThrow(MetadataOptionError);
      expect(() => new SqliteMetadataStore(options as never)).toThrow(message);
    }
  });

  it('a write waits for another process holding the write lock without blocking the event loop; past busyTimeoutMs it is UNAVAILABLE', async () => {
    const store = new SqliteMetadataStore({ filename, busyTimeoutMs: 10_000 });
    const impatient = new SqliteMetadataStore({ filename, busyTimeoutMs: 100 });
    const { released } = await holdWriteLock(filename, 600);
    try {
      const failed = Date.now();
      await expect(impatient.tags.set('r', 'busy', tagRecord(1))).rejects.toMatchObject({
        code: 'UNAVAILABLE', message: expect.stringContaining(`${filename} stayed locked by another process for more than 100 ms (busyTimeoutMs)`),
      });
      expect(Date.now() - failed).toBeLessThan(400);
      // While the write waits, timers keep firing: a server keeps answering from what it has.
      let ticks = 0;
      const ticker = setInterval(() => (ticks += 1), 10);
      const started = Date.now();
      await store.tags.set('r', 'waited', tagRecord(2));
      clearInterval(ticker);
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      expect(ticks).toBeGreaterThanOrEqual(5);
      expect(await store.tags.get('r', 'waited')).toStrictEqual(tagRecord(2));
    } finally {
      await released;
      await store.close();
      await impatient.close();
    }
  });

  it('a loop of setMany batches and a walk of entries() let timers and I/O run between calls', async () => {
    const store = new SqliteMetadataStore({ filename });
    let turns = 0;
    const tick = () => {
      turns += 1;
      if (turns < 1_000) setImmediate(tick);
    };
    setImmediate(tick);
    for (let batch = 0; batch < 5; batch += 1) {
      await store.tags.setMany(Array.from({ length: 500 }, (_, i) => ({ repository: `r/${batch}`, tag: `t${i}`, record: tagRecord(i) })));
    }
    // Without a yield, awaiting already-settled promises never leaves the microtask queue.
    expect(turns).toBeGreaterThanOrEqual(5);
    const before = turns;
    let walked = 0;
    for await (const _entry of store.tags.entries()) walked += 1;
    expect(walked).toBe(2_500);
    expect(turns - before).toBeGreaterThanOrEqual(2);
    await store.close();
  });

  it('keeps at most maxVerdicts, forgetting the least recently set first', async () => {
    const store = new SqliteMetadataStore({ filename, maxVerdicts: 3 });
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      await store.verdicts.set(name, { readable: true, checkedAt: 1 }, 60_000);
      await sleep(3);
    }
    await store.verdicts.set('c', { readable: false, checkedAt: 2 }, 60_000);
    await store.verdicts.set('f', { readable: true, checkedAt: 3 }, 60_000);
    const kept = await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map(async (name) => (await store.verdicts.get(name)) !== undefined));
    expect(kept).toEqual([false, false, true, false, true, true]);
    expect(inspect((db) => db.prepare('SELECT COUNT(*) FROM verdicts').pluck().get())).toBe(3);
    await store.close();
  });

  it('prunes expired verdicts as new ones are set, so the table does not grow with dead rows', async () => {
    const store = new SqliteMetadataStore({ filename });
    for (let i = 0; i < 50; i += 1) await store.verdicts.set(`gone/${i}`, { readable: true, checkedAt: i }, 1);
    await sleep(20);
    await store.verdicts.set('live', { readable: true, checkedAt: 1 }, 60_000);
    expect(inspect((db) => db.prepare('SELECT repository FROM verdicts').pluck().all())).toEqual(['live']);
    expect(inspect((db) => db.prepare('SELECT verdicts FROM totals').pluck().get())).toBe(1);
    await store.close();
  });
});

/** Another thread takes the write lock and holds it for `ms`; `released` settles once it has let go. */
async function holdWriteLock(file: string, ms: number): Promise<{ released: Promise<void> }> {
  const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const Database = require(workerData.betterSqlite3);
    const db = new Database(workerData.file);
    db.exec('BEGIN IMMEDIATE');
    parentPort.postMessage('locked');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.ms);
    db.exec('COMMIT');
    db.close();
  `, { eval: true, workerData: { file, ms, betterSqlite3 } });
  const exited = new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return { released: exited };
}
