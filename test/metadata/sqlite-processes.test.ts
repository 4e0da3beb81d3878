/**
 * Several processes on one metadata.db, as `serve`, `warm` and `import` share a cache: every
 * increment, tag and blob record from each of them is there afterwards, and the totals the
 * triggers keep agree with a count of the rows; and a process opening a new file while another
 * is still writing its first transaction (the workers of a first `serve`) waits for it.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const writer = path.join(here, 'sqlite-writer-process.ts');
const root = path.resolve(here, '../..');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'metadata-processes-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('SQLite metadata shared by processes', () => {
  it('three processes writing at once lose nothing: usage adds up, every tag and blob arrives, totals match the rows', async () => {
    const filename = path.join(dir, 'metadata.db');
    const [processes, rounds] = [3, 200];
    // Process start-up takes a while under load; they all begin writing at this moment.
    const startAt = String(Date.now() + 3_000);
    const outputs = await Promise.all(Array.from({ length: processes }, (_, id) =>
      run(process.execPath, ['--import', 'tsx', writer, filename, String(id), String(rounds), startAt], { cwd: root, timeout: 60_000 })));
    expect(outputs.map((output) => output.stdout)).toEqual(Array(processes).fill('done\n'));

    const store = new SqliteMetadataStore({ filename });
    const report = await store.usage.report(10);
    expect(report.totals).toEqual({ pulls: 2 * processes * rounds, hits: 2 * processes * rounds, misses: 3 * processes * rounds });
    expect(report.repositories[0]).toEqual({ repository: 'shared/repo', pulls: processes * rounds, hits: 2 * processes * rounds, misses: 3 * processes * rounds });
    expect(await store.tags.count()).toEqual({ tags: processes * rounds * 20 + 1, repositories: processes + 1 });
    for (let id = 0; id < processes; id += 1) expect(await store.tags.list(`proc/${id}`)).toHaveLength(rounds * 20);
    expect(await store.blobs.totals()).toEqual({ count: processes * rounds, bytes: processes * rounds * 10, retainedBytes: processes * (rounds / 2) * 10 });
    await store.close();

    const db = new Database(filename, { readonly: true });
    const counted = db.prepare(`SELECT (SELECT COUNT(*) FROM tags) AS tags, (SELECT COUNT(DISTINCT repository) FROM tags) AS repositories,
      (SELECT COUNT(*) FROM blobs) AS blobs, (SELECT SUM(pulls) FROM usage) AS pulls`).get();
    const kept = db.prepare('SELECT tags, tag_repositories AS repositories, blobs, pulls FROM totals').get();
    db.close();
    expect(kept).toEqual(counted);
  });

  it('opening a new file while another process writes to it before WAL mode waits for that write instead of failing with SQLITE_BUSY', async () => {
    // The workers of a first `npm start` open a cache's new metadata.db at once. Switching it to
    // WAL is a write; SQLite answers a connection that needs to write while another holds the
    // write lock of a rollback-journal file with SQLITE_BUSY at once, without its busy handler
    // (a deadlock otherwise), and the worker died with "cannot open the cache".
    const filename = path.join(dir, 'metadata.db');
    const holder = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(process.argv[1]);
      db.exec('BEGIN IMMEDIATE'); db.exec('CREATE TABLE first_writer (a)');
      process.stdout.write('holding\\n');
      setTimeout(() => { db.exec('COMMIT'); db.close(); }, 500);
    `, filename], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    // Listened for from the start: it may exit while the store is still being checked below.
    const exited = once(holder, 'exit');
    const [firstLine] = (await once(holder.stdout!, 'data')) as [Buffer];
    expect(firstLine.toString()).toBe('holding\n');

    const store = new SqliteMetadataStore({ filename, busyTimeoutMs: 10_000 });
    await store.tags.set('library/alpine', 'latest', { digest: 'sha256:opened', mediaType: 'm', size: 1, checkedAt: 1 });
    expect((await store.tags.get('library/alpine', 'latest'))?.digest).toBe('sha256:opened');
    await store.close();
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    const db = new Database(filename, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'first_writer'").get()).toEqual({ name: 'first_writer' });
    db.close();
  });
});
