/**
 * Keeps the cached blobs within `cache.maxBytes`, least recently used first out.
 *
 * lru-cache does the bookkeeping (sizes, recency, eviction order); disposing an entry deletes the
 * file. A blob that is being read is pinned: if it is evicted meanwhile, its file is deleted when
 * the last reader lets go, never under a reader. Recency is also written to the file's mtime
 * (at most once per TOUCH_INTERVAL_MS) so that the order survives a restart, and so that the
 * offline `prune` command can apply the same policy.
 *
 * A download reserves its announced size before its first byte is written (`reserve`): the
 * reservation is an entry like any other, so older blobs are evicted to make room up front and
 * the budget holds at all times apart from downloads that together exceed it.
 */
import { LRUCache } from 'lru-cache';
import { parseDigest } from '../domain/digest.js';
import type { BlobStore } from '../store/blob-store.js';

const TOUCH_INTERVAL_MS = 60 * 60 * 1000;
/** Reservation keys can never collide with a digest (`algorithm:hex`). */
const RESERVATION_PREFIX = 'reservation/';

interface Entry {
  size: number;
  touchedAtMs: number;
}

export interface EvictionEvents {
  onEvict?: (digest: string, size: number) => void;
}

export class BlobLru {
  private readonly lru: LRUCache<string, Entry>;
  private readonly pins = new Map<string, number>();
  /** Evicted while pinned: deleted when the last pin is released. */
  private readonly doomed = new Set<string>();
  /** File deletions under way, so callers can wait for the disk to catch up (`idle`). */
  private readonly deleting = new Set<Promise<void>>();
  private reservations = 0;
  private reservationSeq = 0;

  constructor(private readonly store: BlobStore, readonly maxBytes: number, private readonly events: EvictionEvents = {}) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`expected cache.maxBytes to be a positive integer, got ${maxBytes}`);
    this.lru = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.size),
      dispose: (entry, key, reason) => {
        if (key.startsWith(RESERVATION_PREFIX)) this.reservations -= 1;
        else if (reason === 'evict' || reason === 'delete') this.discard(key, entry.size);
      },
    });
  }

  /** Bytes counted against the budget: cached blobs plus reservations of downloads. */
  get totalBytes(): number {
    return this.lru.calculatedSize;
  }

  /** Cached blobs in the index. */
  get count(): number {
    return this.lru.size - this.reservations;
  }

  /** Rebuilds the index from disk, oldest use first, so the newest end up most recent. */
  async rebuild(): Promise<void> {
    const blobs = [];
    for await (const blob of this.store.list()) blobs.push(blob);
    blobs.sort((a, b) => a.usedAtMs - b.usedAtMs);
    for (const blob of blobs) this.admit(blob.digest.value, blob.size, blob.usedAtMs);
  }

  /** A blob was just published. */
  add(digest: string, size: number): void {
    this.admit(digest, size, Date.now());
  }

  /** Whether the index knows the blob (it may still be on disk if evicted while pinned). */
  has(digest: string): boolean {
    return this.lru.has(digest);
  }

  /**
   * The size of a blob the index holds, without touching its recency or the disk: every
   * published blob enters the index with its size (add, rebuild), so a warm hit needs no stat.
   */
  sizeOf(digest: string): number | undefined {
    return this.lru.peek(digest)?.size;
  }

  /**
   * Counts `size` bytes of a download against the budget before they are written, evicting
   * older blobs as needed. Call the returned function once the blob is published (just before
   * `add`) or abandoned.
   */
  reserve(size: number): () => void {
    if (size <= 0 || size > this.maxBytes) return () => {};
    const key = `${RESERVATION_PREFIX}${++this.reservationSeq}`;
    this.reservations += 1;
    this.lru.set(key, { size, touchedAtMs: Date.now() });
    return () => void this.lru.delete(key);
  }

  /** Evicts least recently used blobs until at least `bytes` are freed (disk full). Returns bytes freed. */
  evictBytes(bytes: number): number {
    let freed = 0;
    for (const key of [...this.lru.rkeys()]) {
      if (freed >= bytes) break;
      if (key.startsWith(RESERVATION_PREFIX)) continue;
      freed += this.lru.peek(key)?.size ?? 0;
      this.lru.delete(key);
    }
    return freed;
  }

  /** A blob is about to be served: bump its recency and keep its file until `release` runs. */
  use(digest: string, size: number): () => void {
    const entry = this.lru.get(digest);
    if (!entry) this.admit(digest, size, Date.now());
    else if (Date.now() - entry.touchedAtMs > TOUCH_INTERVAL_MS) {
      entry.touchedAtMs = Date.now();
      void this.store.touch(parseDigest(digest));
    }
    this.doomed.delete(digest);
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.unpin(digest);
    };
  }

  /** Drops a blob from the index and disk (e.g. it failed verification). */
  remove(digest: string): void {
    this.lru.delete(digest);
  }

  /** Resolves once every file deletion started so far has finished. */
  async idle(): Promise<void> {
    while (this.deleting.size > 0) await Promise.all([...this.deleting]);
  }

  private admit(digest: string, size: number, usedAtMs: number): void {
    if (size > this.maxBytes) {
      // Larger than the whole budget: it can be served once but not kept.
      this.discard(digest, size);
      return;
    }
    this.lru.set(digest, { size, touchedAtMs: usedAtMs });
  }

  private unpin(digest: string): void {
    const count = (this.pins.get(digest) ?? 1) - 1;
    if (count > 0) {
      this.pins.set(digest, count);
      return;
    }
    this.pins.delete(digest);
    if (this.doomed.delete(digest)) this.deleteFile(digest);
  }

  private discard(digest: string, size: number): void {
    this.events.onEvict?.(digest, size);
    if (this.pins.has(digest)) this.doomed.add(digest);
    else this.deleteFile(digest);
  }

  private deleteFile(digest: string): void {
    const deletion = this.store.delete(parseDigest(digest)).catch(() => {});
    this.deleting.add(deletion);
    void deletion.finally(() => this.deleting.delete(deletion));
  }
}
