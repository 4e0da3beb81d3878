/**
 * Keeps the cached blobs within `cache.maxBytes`, least recently used first out.
 *
 * lru-cache does the bookkeeping (sizes, recency, eviction order); disposing an entry deletes the
 * file. A blob that is being read is pinned: if it is evicted meanwhile, its file is deleted when
 * the last reader lets go, never under a reader. Recency is also written to the file's mtime
 * (at most once per TOUCH_INTERVAL_MS) so that the order survives a restart.
 */
import { LRUCache } from 'lru-cache';
import { parseDigest, type Digest } from '../domain/digest.js';
import type { BlobStore } from '../store/blob-store.js';

const TOUCH_INTERVAL_MS = 60 * 60 * 1000;

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

  constructor(private readonly store: BlobStore, readonly maxBytes: number, private readonly events: EvictionEvents = {}) {
    this.lru = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.size),
      dispose: (entry, digest, reason) => {
        if (reason === 'evict' || reason === 'delete') this.discard(digest, entry.size);
      },
    });
  }

  get totalBytes(): number {
    return this.lru.calculatedSize;
  }

  get count(): number {
    return this.lru.size;
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
    if (this.doomed.delete(digest)) void this.store.delete(parseDigest(digest));
  }

  private discard(digest: string, size: number): void {
    this.events.onEvict?.(digest, size);
    if (this.pins.has(digest)) this.doomed.add(digest);
    else void this.store.delete(parseDigest(digest));
  }
}
