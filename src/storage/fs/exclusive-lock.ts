/**
 * A lock held by one process at a time on one machine, for work that must not run twice at once
 * (upgrading a cache of an earlier release: upgrade-cache.ts). It is SQLite's EXCLUSIVE lock on a
 * file of its own, which is the operating system's record lock (fcntl(2)): it goes with the
 * process however the process ends, so a crash never leaves a stale lock to clean up by hand.
 *
 * Waiting polls without blocking the event loop (busy timeout 0, then a timer), so a process that
 * waits keeps answering what it can, e.g. requests that wait for its cache to open.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface ExclusiveLockOptions {
  /** Between two attempts; default 50 ms. */
  pollMs?: number;
  /** Called once when the lock is held by another process (to say why a start waits). */
  onWait?: () => void;
}

const DEFAULT_POLL_MS = 50;

export async function withExclusiveLock<T>(file: string, work: () => Promise<T>, options: ExclusiveLockOptions = {}): Promise<T> {
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 0 });
  try {
    await acquire(db, options);
    try {
      return await work();
    } finally {
      db.exec('COMMIT');
    }
  } finally {
    db.close();
  }
}

async function acquire(db: Database.Database, { pollMs = DEFAULT_POLL_MS, onWait }: ExclusiveLockOptions): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      db.exec('BEGIN EXCLUSIVE');
      return;
    } catch (error) {
      if (!isBusy(error)) throw error;
    }
    if (attempt === 0) onWait?.();
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function isBusy(error: unknown): boolean {
  return String((error as { code?: unknown }).code).startsWith('SQLITE_BUSY');
}
