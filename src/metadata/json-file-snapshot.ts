/**
 * The on-disk side of json-file-store.ts: one JSON file per keyv namespace, read whole and
 * replaced whole.
 *
 * Format (a superset of keyv-file's, so either reads the other's files):
 *   { "cache":   [[key, { "value": <keyv's serialized string>, "updatedAt": ms, "expire"?: ms }]],
 *     "deleted": [[key, deletedAt ms]] }
 * `updatedAt` lets processes sharing the file merge entry by entry (newest wins); `deleted`
 * holds tombstones, so a deletion is not undone by a process still holding the old entry.
 * keyv-file ignores both fields; entries it wrote count as updated at time 0.
 */
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';

export interface StoredEntry {
  /** What keyv handed the store (a serialized string), kept opaque. */
  value: unknown;
  updatedAt: number;
  /** keyv-file's own expiry; written for entries that have a keyv TTL. */
  expire?: number;
}

export interface Snapshot {
  entries: Map<string, StoredEntry>;
  /** Key -> when it was deleted. */
  deleted: Map<string, number>;
}

/** Identifies one version of the file: a save renames a new inode into place. */
export interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

interface FileContent {
  cache: Array<[string, { value: unknown; updatedAt?: number; expire?: number }]>;
  deleted?: Array<[string, number]>;
}

/** Tombstones older than this are dropped: every process has merged them long before. */
const TOMBSTONE_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export function emptySnapshot(): Snapshot {
  return { entries: new Map(), deleted: new Map() };
}

export function isExpired(entry: { expire?: number }, now: number): boolean {
  return entry.expire !== undefined && entry.expire <= now;
}

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  return a?.ino === b?.ino && a?.size === b?.size && a?.mtimeMs === b?.mtimeMs;
}

/** One stat() of the path: the cheap check a read miss makes before re-reading the file. */
export function statStamp(filename: string): FileStamp | undefined {
  const stats = statSync(filename, { throwIfNoEntry: false });
  return stats && stampOf(stats);
}

export interface ReadResult {
  snapshot: Snapshot;
  /** Of the version read; undefined when there is no file. */
  stamp: FileStamp | undefined;
  /** The file did not parse: `snapshot` is empty and says nothing about what others wrote. */
  corrupt: boolean;
}

/**
 * Reads the file and the stamp of the very version read (through one descriptor, so a rename
 * in between cannot pair one version's stamp with another's content). A file that does not
 * parse was not written by a save (only whole files are renamed into place): with
 * `moveCorruptAside`, it is renamed for a human to look at.
 */
export function readSnapshot(filename: string, moveCorruptAside: boolean): ReadResult {
  let text: string;
  let stamp: FileStamp;
  try {
    const handle = openSync(filename, 'r');
    try {
      stamp = stampOf(fstatSync(handle));
      text = readFileSync(handle, 'utf8');
    } finally {
      closeSync(handle);
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { snapshot: emptySnapshot(), stamp: undefined, corrupt: false };
    throw error;
  }
  try {
    return { snapshot: parseContent(JSON.parse(text) as FileContent), stamp, corrupt: false };
  } catch {
    if (!moveCorruptAside) return { snapshot: emptySnapshot(), stamp, corrupt: true };
    renameSync(filename, `${filename}.corrupt-${Date.now()}`);
    return { snapshot: emptySnapshot(), stamp: undefined, corrupt: true };
  }
}

function parseContent(content: FileContent): Snapshot {
  const now = Date.now();
  const snapshot = emptySnapshot();
  for (const [key, entry] of content.cache) {
    // keyv-file kept its own expiry next to the value; honour it for files it wrote.
    if (!isExpired(entry, now)) snapshot.entries.set(key, { value: entry.value, updatedAt: entry.updatedAt ?? 0, expire: entry.expire });
  }
  for (const [key, deletedAt] of content.deleted ?? []) snapshot.deleted.set(key, deletedAt);
  return snapshot;
}

export function serializeSnapshot(snapshot: Snapshot): string {
  const now = Date.now();
  const content: FileContent = {
    cache: [...snapshot.entries].filter(([, entry]) => !isExpired(entry, now)).map(([key, entry]) => [key, entry]),
    deleted: [...snapshot.deleted].filter(([, deletedAt]) => deletedAt > now - TOMBSTONE_RETENTION_MS),
  };
  return JSON.stringify(content);
}

/**
 * Temp files of saves a crash interrupted; the file they were meant to replace is still whole.
 * Only call it holding the file's lock: otherwise a temp file may be another process's save.
 */
export function removeTempFiles(filename: string): void {
  const prefix = `${path.basename(filename)}.`;
  let names: string[];
  try {
    names = readdirSync(path.dirname(filename));
  } catch {
    return;
  }
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) rmSync(path.join(path.dirname(filename), name), { force: true });
  }
}

/** Temp file, fsync, rename (atomic on POSIX): the file is always a whole old or new version. */
export async function writeAtomically(filename: string, content: string): Promise<FileStamp> {
  await mkdir(path.dirname(filename), { recursive: true });
  const temp = `${filename}.${randomUUID()}.tmp`;
  const handle = await open(temp, 'w');
  let stamp: FileStamp;
  try {
    await handle.writeFile(content);
    // Without the fsync, a power cut after the rename can leave an empty file under the new name.
    await handle.sync();
    stamp = stampOf(await handle.stat());
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, filename);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return stamp;
}

function stampOf(stats: Stats): FileStamp {
  return { ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
}
