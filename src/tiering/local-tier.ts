/**
 * The local hot tier of a replica whose content lives in S3 (issue 15 item 2): copies of hot
 * blobs on the local disk under `cache.dir`, bounded by `cache.maxBytes`, least recently used
 * first out, sent with sendfile like any cached blob.
 *
 * The shared blob index (metadata.blobs, in Redis) describes what the bucket holds; what this
 * disk holds is another matter, with its own recency. That is kept in a SQLite file of its own,
 * `<cache.dir>/local-tier.db`, rather than in memory: the workers of one machine (`serve
 * --workers`) share this directory, and a shared index gives them one total and one LRU order
 * (an index per process would let each believe it alone fills the disk). The same CacheBudget as
 * the filesystem mirror runs over it, so pins, reservations, ENOSPC handling and the rebuild from
 * the disk at start-up (reconcile) are the ones already tested.
 */
import path from 'node:path';
import type { Digest } from '../domain/digest.js';
import { CacheBudget } from '../eviction/cache-budget.js';
import { SqliteMetadataStore } from '../metadata/sqlite/sqlite-metadata-store.js';
import { FsContentStore } from '../storage/fs/fs-content-store.js';

export const LOCAL_TIER_DATABASE = 'local-tier.db';

export interface LocalTierOptions {
  dir: string;
  maxBytes: number;
  onEvict?: (digest: string, size: number) => void;
  onError?: (error: unknown) => void;
}

export class LocalTier {
  private constructor(
    readonly content: FsContentStore,
    readonly budget: CacheBudget,
    private readonly index: SqliteMetadataStore,
  ) {}

  /** Opens the directory and its index, and starts reconciling the index with the disk in the background. */
  static async open(options: LocalTierOptions): Promise<LocalTier> {
    const content = await FsContentStore.open(options.dir);
    let index: SqliteMetadataStore;
    try {
      index = new SqliteMetadataStore({ filename: path.join(options.dir, LOCAL_TIER_DATABASE) });
    } catch (error) {
      await content.close();
      throw error;
    }
    const budget = new CacheBudget({ content, metadata: index, maxBytes: options.maxBytes, onEvict: options.onEvict, onError: options.onError });
    await budget.start('background');
    return new LocalTier(content, budget, index);
  }

  /** The size of the local copy, or undefined when this disk holds none (no I/O for a blob this process knows). */
  async sizeOf(digest: Digest): Promise<number | undefined> {
    return this.budget.sizeOf(digest.value) ?? (await this.budget.lookup(digest.value));
  }

  /** Records a use for the LRU; the bytes are sent right away, so nothing stays pinned. */
  touch(digest: Digest, size: number): void {
    this.budget.use(digest.value, size)();
  }

  /** Indexes a local copy just published. */
  async added(digest: Digest, size: number): Promise<void> {
    await this.budget.add(digest.value, size);
  }

  async delete(digest: Digest): Promise<void> {
    this.budget.forget(digest.value);
    await this.content.delete(digest);
  }

  async close(): Promise<void> {
    await this.budget.close();
    await this.content.close();
    await this.index.close();
  }
}
