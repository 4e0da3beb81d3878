/**
 * A keyv store that keeps its entries in memory and saves them to one JSON file, safely shared
 * by several processes on one cache (a server, and `warm`/`import` beside it).
 *
 * keyv-file writes its file in place (fs.writeFile), so a process killed mid-write leaves a
 * truncated file, which keyv-file then silently reads as empty: every tag is lost. Here a save
 * writes a temp file, fsyncs it and renames it over the old one, so the file on disk is always
 * a whole version (json-file-snapshot.ts).
 *
 * Sharing: a save takes an exclusive lock (proper-lockfile), re-reads the file and merges it
 * entry by entry with what this process changed since (newest `updatedAt` wins; deletions are
 * tombstones with a time, so they are not undone by an older copy), then writes the merged whole.
 * Keys this process did not change are taken from disk, so each save also picks up what the
 * others wrote. A read miss (absent or expired in memory) re-reads the file if its stamp
 * changed, checking at most every RELOAD_CHECK_MS, so a server sees tags an `import` recorded
 * without a restart. Hits are answered from memory without touching the disk.
 *
 * Saves are debounced (`writeDelayMs`) and `set` does not wait for them, so a tag update costs no
 * disk latency on the pull path; `disconnect()` (keyv.disconnect, called by mirror.close) writes
 * what is pending. The store is a Map, which keyv supports natively, iteration included; keyv
 * hands it serialized strings with their expiry inside, so expiry stays keyv's business (the
 * TTL keyv passes to `set` is kept beside the entry only to tell an expired entry from a hit).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { lock } from 'proper-lockfile';
import {
  isExpired, readSnapshot, removeTempFiles, sameStamp, serializeSnapshot, statStamp, writeAtomically,
  type FileStamp, type Snapshot, type StoredEntry,
} from './json-file-snapshot.js';

export interface JsonFileStoreOptions {
  /** Delay before pending changes are written; default 100 ms. */
  writeDelayMs?: number;
  /** Never write (for commands that only read a cache a running server owns). */
  readOnly?: boolean;
  /** Where save failures go; default process.emitWarning. */
  onError?: (error: Error) => void;
  /**
   * Combines two live versions of a key when this process changed it and the file holds another
   * version (e.g. the union of two tag lists). Without it the newer version wins. Both arguments
   * and the result are the serialized values keyv stores.
   */
  merge?: (mine: unknown, theirs: unknown) => unknown;
}

/** One key's state in a process or on disk; undefined means "never heard of it". */
type Version = { entry: StoredEntry; deletedAt?: undefined } | { entry?: undefined; deletedAt: number } | undefined;

/** A miss re-checks the file at most this often: a stat per miss would cost a syscall per cold pull. */
const RELOAD_CHECK_MS = 100;

export class JsonFileStore extends Map<string, unknown> {
  private readonly writeDelayMs: number;
  private readonly readOnly: boolean;
  private readonly onError: (error: Error) => void;
  private readonly merge: JsonFileStoreOptions['merge'];
  /** updatedAt and expiry of each key in the Map (which holds keyv's values themselves). */
  private readonly meta = new Map<string, Omit<StoredEntry, 'value'>>();
  private readonly tombstones = new Map<string, number>();
  /** Keys changed here and not yet saved: the only ones a merge may take from this process. */
  private readonly dirty = new Set<string>();
  private loaded: FileStamp | undefined;
  private lastCheck = 0;
  private tempFilesRemoved = false;
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly filename: string, options: JsonFileStoreOptions = {}) {
    super();
    this.writeDelayMs = options.writeDelayMs ?? 100;
    this.readOnly = options.readOnly ?? false;
    this.onError = options.onError ?? ((error) => process.emitWarning(error));
    this.merge = options.merge;
    const { snapshot, stamp } = readSnapshot(filename, !this.readOnly);
    this.adopt(snapshot);
    this.loaded = stamp;
  }

  override get(key: string): unknown {
    const meta = this.meta.get(key);
    if (meta && !isExpired(meta, Date.now())) return super.get(key);
    this.reloadIfChanged();
    return super.get(key);
  }

  /** keyv passes its TTL (ms) as the third argument. */
  override set(key: string, value: unknown, ttl?: number): this {
    const updatedAt = this.nextTime(key);
    this.apply(key, { entry: { value, updatedAt, expire: typeof ttl === 'number' && ttl > 0 ? updatedAt + ttl : undefined } });
    this.changed(key);
    return this;
  }

  override delete(key: string): boolean {
    if (!this.meta.has(key)) this.reloadIfChanged();
    const meta = this.meta.get(key);
    if (!meta) return false;
    // keyv deletes what it finds expired; every process agrees on that, so no tombstone is needed.
    if (isExpired(meta, Date.now())) this.apply(key, undefined);
    else {
      this.apply(key, { deletedAt: this.nextTime(key) });
      this.changed(key);
    }
    return true;
  }

  override clear(): void {
    for (const key of [...this.meta.keys()]) this.delete(key);
  }

  /** Writes pending changes now; resolves when they are on disk. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty.size > 0 && !this.readOnly) {
      this.saving = this.saving.then(() => this.save()).catch((error: Error) => this.onError(error));
    }
    await this.saving;
  }

  /** Called by keyv.disconnect(). */
  async disconnect(): Promise<void> {
    await this.flush();
  }

  private changed(key: string): void {
    this.dirty.add(key);
    if (this.timer || this.readOnly) return;
    this.timer = setTimeout(() => void this.flush(), this.writeDelayMs);
    // A pending save must not keep a finished process alive; close() flushes it instead.
    this.timer.unref();
  }

  private async save(): Promise<void> {
    if (this.dirty.size === 0) return;
    await mkdir(path.dirname(this.filename), { recursive: true });
    const release = await lock(this.filename, {
      realpath: false,
      // A crashed holder's lock counts as stale after 5 s; waiters retry for longer than that.
      stale: 5_000,
      retries: { retries: 100, factor: 1.2, minTimeout: 10, maxTimeout: 100 },
      onCompromised: (error) => this.onError(error),
    });
    try {
      // Under the lock no save is in progress, so any temp file is a crash's leftover.
      if (!this.tempFilesRemoved) removeTempFiles(this.filename);
      this.tempFilesRemoved = true;
      // Read, merge and serialize in one synchronous stretch, so no set() lands in between.
      const { snapshot, corrupt } = readSnapshot(this.filename, true);
      if (!corrupt) this.adopt(snapshot);
      const saved = [...this.dirty];
      this.dirty.clear();
      try {
        this.loaded = await writeAtomically(this.filename, serializeSnapshot(this.snapshot()));
      } catch (error) {
        for (const key of saved) this.dirty.add(key);
        throw error;
      }
    } finally {
      await release();
    }
  }

  private reloadIfChanged(): void {
    const now = Date.now();
    if (now - this.lastCheck < RELOAD_CHECK_MS) return;
    this.lastCheck = now;
    try {
      if (sameStamp(statStamp(this.filename), this.loaded)) return;
      // Not under the lock: a reader only ever sees whole files, and leaves a corrupt one to the next save.
      const { snapshot, stamp, corrupt } = readSnapshot(this.filename, false);
      if (!corrupt) this.adopt(snapshot);
      this.loaded = stamp;
    } catch (error) {
      this.onError(error as Error);
    }
  }

  /** Takes the file's version of every key this process has not changed since its last save. */
  private adopt(theirs: Snapshot): void {
    const keys = new Set([...theirs.entries.keys(), ...theirs.deleted.keys(), ...this.meta.keys(), ...this.tombstones.keys()]);
    for (const key of keys) {
      const disk = versionIn(theirs, key);
      this.apply(key, this.dirty.has(key) ? this.resolve(this.localVersion(key), disk) : disk);
    }
  }

  private resolve(mine: Version, theirs: Version): Version {
    if (!mine || !theirs) return mine ?? theirs;
    if (mine.entry && theirs.entry && this.merge) {
      const expire = mine.entry.expire === undefined || theirs.entry.expire === undefined ? undefined : Math.max(mine.entry.expire, theirs.entry.expire);
      return { entry: { value: this.merge(mine.entry.value, theirs.entry.value), updatedAt: Math.max(mine.entry.updatedAt, theirs.entry.updatedAt), expire } };
    }
    return versionTime(mine) >= versionTime(theirs) ? mine : theirs;
  }

  private localVersion(key: string): Version {
    const meta = this.meta.get(key);
    if (meta) return { entry: { ...meta, value: super.get(key) } };
    const deletedAt = this.tombstones.get(key);
    return deletedAt === undefined ? undefined : { deletedAt };
  }

  private apply(key: string, version: Version): void {
    if (version?.entry) {
      super.set(key, version.entry.value);
      this.meta.set(key, { updatedAt: version.entry.updatedAt, expire: version.entry.expire });
    } else {
      super.delete(key);
      this.meta.delete(key);
    }
    if (version?.deletedAt === undefined) this.tombstones.delete(key);
    else this.tombstones.set(key, version.deletedAt);
  }

  private snapshot(): Snapshot {
    const entries = new Map<string, StoredEntry>();
    for (const [key, meta] of this.meta) entries.set(key, { ...meta, value: super.get(key) });
    return { entries, deleted: new Map(this.tombstones) };
  }

  /** Now, but always after this key's previous version, so a quick re-set is never the older one. */
  private nextTime(key: string): number {
    return Math.max(Date.now(), versionTime(this.localVersion(key)) + 1);
  }
}

function versionIn(snapshot: Snapshot, key: string): Version {
  const entry = snapshot.entries.get(key);
  if (entry) return { entry };
  const deletedAt = snapshot.deleted.get(key);
  return deletedAt === undefined ? undefined : { deletedAt };
}

function versionTime(version: Version): number {
  return version?.entry ? version.entry.updatedAt : (version?.deletedAt ?? -Infinity);
}
