/**
 * Keeps the cached blobs within `cache.maxBytes`, least recently used first out, over the
 * metadata blob index (size, usedAt, retained): processes sharing a cache share one order and
 * one total. Retained blobs (hosted content) are never evicted; manifests are not in the index.
 *
 * In this process only: the sizes of blobs it knows (so a warm GET needs neither a stat nor a
 * query), pins of blobs being read (an evicted blob's bytes are deleted when its last reader
 * lets go, never under a reader), and recency, written behind in batches (recency-writer.ts).
 * Fills claim budget as their bytes arrive (reservation.ts). Eviction passes run one at a time.
 */
import { parseDigest } from '../domain/digest.js';
import type { BlobRecord, MetadataStore } from '../metadata/metadata-store.js';
import { MetadataUnavailableError } from '../metadata/metadata-errors.js';
import type { ContentStore } from '../storage/content-store.js';
import { RecencyWriter } from './recency-writer.js';
import { reconcileBlobIndex } from './reconcile-index.js';
import { Reservation, type ReservationHost } from './reservation.js';

export interface CacheBudgetOptions {
  content: ContentStore;
  metadata: Pick<MetadataStore, 'blobs' | 'manifests' | 'links'>;
  maxBytes: number;
  onEvict?: (digest: string, size: number) => void;
  /** Where failures of background work go (recency writes, eviction passes); default process.emitWarning. */
  onError?: (error: unknown) => void;
  /** How often recency is written; default 1 s. */
  recencyFlushMs?: number;
}

/** At start: index what the store holds and drop records of what it lost, in the background or not at all. */
export type ReconcileMode = 'await' | 'background' | 'skip';

const EVICTION_BATCH = 64;
/** Sizes remembered in process (first in, first out); beyond this a blob costs one index lookup on its next GET. */
const KNOWN_SIZES = 500_000;

export class CacheBudget implements ReservationHost {
  readonly maxBytes: number;
  #bytes = 0;
  #count = 0;
  #retainedBytes = 0;
  #reserved = 0;
  readonly #sizes = new Map<string, number>();
  readonly #pins = new Map<string, number>();
  /** Evicted while pinned: the bytes go when the last pin does. */
  readonly #doomed = new Set<string>();
  readonly #deleting = new Set<Promise<void>>();
  readonly #recency: RecencyWriter;
  readonly #onError: (error: unknown) => void;
  #pass: Promise<unknown> = Promise.resolve();
  #reconciling: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(private readonly options: CacheBudgetOptions) {
    const { maxBytes } = options;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`expected cache.maxBytes to be a positive integer, got ${maxBytes}`);
    this.maxBytes = maxBytes;
    this.#onError = options.onError ?? ((error) => process.emitWarning(error as Error));
    this.#recency = new RecencyWriter(options.metadata.blobs, options.recencyFlushMs ?? 1000, this.#onError);
  }

  /** Bytes counted against the budget: indexed blobs plus the claims of fills under way. */
  get totalBytes(): number {
    return this.#bytes + this.#reserved;
  }

  /** Blobs in the index. */
  get count(): number {
    return this.#count;
  }

  /** Bytes of retained blobs (hosted content), which the budget does not count; as of the last refresh. */
  get retainedBytes(): number {
    return this.#retainedBytes;
  }

  /** Re-reads the totals: blobs became retained or evictable (hosted pushes, garbage collection). */
  async refresh(): Promise<void> {
    await this.#syncTotals();
  }

  async start(reconcile: ReconcileMode): Promise<void> {
    // A shared index (Redis) may be away as a replica starts: it serves meanwhile, and the
    // totals are read again before the first reservation needs them.
    await this.#syncTotals().catch((error: unknown) => {
      if (!(error instanceof MetadataUnavailableError)) throw error;
      this.#onError(error);
    });
    if (reconcile === 'skip') return;
    const run = reconcileBlobIndex(this.options.content, this.options.metadata, () => this.#closed).then(() => this.enforce());
    this.#reconciling = run.catch(this.#onError);
    if (reconcile === 'await') await run;
  }

  /** The size of a blob this process knows, without any I/O (the warm path). */
  sizeOf(digest: string): number | undefined {
    return this.#sizes.get(digest);
  }

  has(digest: string): boolean {
    return this.#sizes.has(digest);
  }

  /** The size of a cached blob: known, from the index, or from the store (content indexed by nobody yet). */
  async lookup(digest: string): Promise<number | undefined> {
    const known = this.#sizes.get(digest);
    if (known !== undefined) return known;
    const record = await this.options.metadata.blobs.get(digest);
    const size = record?.size ?? (await this.options.content.stat(parseDigest(digest)))?.size;
    if (size === undefined) return undefined;
    if (!record && !(await this.options.metadata.manifests.get(digest))) await this.add(digest, size);
    this.#remember(digest, size);
    return size;
  }

  /** A blob is about to be served: pin it until the returned release runs, and record the use. */
  use(digest: string, size: number): () => void {
    if (!this.#sizes.has(digest)) this.#remember(digest, size);
    this.#pins.set(digest, (this.#pins.get(digest) ?? 0) + 1);
    this.#recency.used(digest);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#unpin(digest);
    };
  }

  /**
   * A blob was just published: index it, then evict what no longer fits. `usedAt`: when its
   * client had it, if earlier than now (a fill hands its last byte over before its fsync).
   */
  async add(digest: string, size: number, usedAt = Date.now()): Promise<void> {
    this.#doomed.delete(digest);
    if (size > this.maxBytes) {
      // Larger than the whole budget: it can be served once but not kept.
      this.#discard(digest);
      return;
    }
    const existed = (await this.options.metadata.blobs.get(digest)) !== undefined;
    await this.options.metadata.blobs.put(digest, size, { usedAt });
    this.#remember(digest, size);
    if (!existed) {
      this.#bytes += size;
      this.#count += 1;
    }
    if (this.totalBytes > this.maxBytes) void this.enforce();
  }

  /** A claim that grows with a fill's bytes (reservation.ts). */
  reserve(): Reservation {
    return new Reservation(this);
  }

  /**
   * No promise while the budget has room: a fill's first chunk, and each step after it, is then
   * written on the event loop, where a promise sent it (and the chunks behind it) through the
   * thread pool, which delayed a miss's first byte by a few milliseconds (issue 16).
   */
  reserveBytes(bytes: number): Promise<void> | undefined {
    this.#reserved += bytes;
    return this.totalBytes > this.maxBytes ? this.enforce() : undefined;
  }

  releaseBytes(bytes: number): void {
    this.#reserved -= bytes;
  }

  /** Evicts until the budget holds; one pass at a time. */
  enforce(): Promise<void> {
    return this.#serialized(async () => {
      await this.#syncTotals();
      let over = this.totalBytes - this.maxBytes;
      while (over > 0 && !this.#closed) {
        const freed = await this.#evictBatch(over);
        if (freed === 0) return;
        over -= freed;
      }
    });
  }

  /** Disk full: evicts least recently used blobs until at least `bytes` are freed. Resolves with the bytes freed. */
  async evictBytes(bytes: number): Promise<number> {
    let freed = 0;
    await this.#serialized(async () => {
      while (freed < bytes) {
        const more = await this.#evictBatch(bytes - freed);
        if (more === 0) return;
        freed += more;
      }
    });
    return freed;
  }

  /** The blob's content was found missing (ENOENT): forget it, so the next request fetches it anew. */
  forget(digest: string): void {
    this.#sizes.delete(digest);
    void this.options.metadata.blobs.delete(digest).then(() => this.#syncTotals()).catch(this.#onError);
  }

  /** Resolves once reconciliation, eviction passes and content deletions started so far are done. */
  async idle(): Promise<void> {
    await this.#reconciling;
    await this.#pass;
    while (this.#deleting.size > 0) await Promise.all([...this.#deleting]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#recency.close();
    await this.idle();
  }

  #remember(digest: string, size: number): void {
    this.#sizes.set(digest, size);
    if (this.#sizes.size > KNOWN_SIZES) this.#sizes.delete(this.#sizes.keys().next().value!);
  }

  #serialized(pass: () => Promise<void>): Promise<void> {
    const run = this.#pass.then(async () => {
      await this.#recency.flush();
      await pass();
    });
    this.#pass = run.catch(this.#onError);
    return run;
  }

  /** Evicts least recently used blobs until `wanted` bytes are freed or this batch runs out; returns bytes freed. */
  async #evictBatch(wanted: number): Promise<number> {
    const victims = await this.options.metadata.blobs.leastRecentlyUsed(EVICTION_BATCH);
    let freed = 0;
    for (const victim of victims) {
      if (freed >= wanted) break;
      freed += await this.#evict(victim);
    }
    return freed;
  }

  async #evict(record: BlobRecord): Promise<number> {
    const { metadata } = this.options;
    // Another process may have evicted it first: then it is not ours to count.
    if (!(await metadata.blobs.delete(record.digest))) return 0;
    this.#sizes.delete(record.digest);
    this.#bytes -= record.size;
    this.#count -= 1;
    this.options.onEvict?.(record.digest, record.size);
    // The same bytes may be a manifest too (fetched once as a blob): a manifest is never evicted.
    if (await metadata.manifests.get(record.digest)) return record.size;
    await metadata.links.removeDigest(record.digest);
    this.#discard(record.digest);
    return record.size;
  }

  #unpin(digest: string): void {
    const count = (this.#pins.get(digest) ?? 1) - 1;
    if (count > 0) {
      this.#pins.set(digest, count);
      return;
    }
    this.#pins.delete(digest);
    if (this.#doomed.delete(digest)) this.#deleteContent(digest);
  }

  #discard(digest: string): void {
    this.#sizes.delete(digest);
    if (this.#pins.has(digest)) this.#doomed.add(digest);
    else this.#deleteContent(digest);
  }

  #deleteContent(digest: string): void {
    const deletion = this.options.content.delete(parseDigest(digest)).catch(this.#onError);
    this.#deleting.add(deletion);
    void deletion.finally(() => this.#deleting.delete(deletion));
  }

  async #syncTotals(): Promise<void> {
    const totals = await this.options.metadata.blobs.totals();
    this.#bytes = totals.bytes - totals.retainedBytes;
    this.#retainedBytes = totals.retainedBytes;
    this.#count = totals.count;
  }
}
