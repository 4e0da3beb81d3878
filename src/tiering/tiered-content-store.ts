/**
 * The content store of a replica with `storage.driver: "s3"`: the bucket is the truth every
 * replica shares, and the local tier (local-tier.ts) a bounded copy of what this replica serves
 * often, so warm pulls cost no S3 request (issue 15 item 2).
 *
 *   open   a local copy: a file body (sendfile), recency recorded locally;
 *          redirect mode, for a client GET: a presigned URL, whatever the local tier holds;
 *          else the bucket's bytes as a stream, and one background copy into the local tier
 *          (promotions.ts) so the next GET is local;
 *   write  cache fills go to both tiers (tiered-writer.ts); upload sessions, which any replica
 *          may continue, to the bucket alone;
 *   stat   the local tier, else the bucket (a local copy implies the bucket has it: see the writer).
 *
 * When S3 is down, what the local tier holds is still served; anything else fails with S3's
 * UpstreamUnavailableError (503).
 */
import type { Digest } from '../domain/digest.js';
import type { S3ContentStore } from '../storage/s3/s3-content-store.js';
import type { BlobBody, ContentStore, ContentWriter, OpenOptions, StoredContent, WriterOptions } from '../storage/content-store.js';
import type { LocalTier } from './local-tier.js';
import { Promotions } from './promotions.js';
import { TieredWriter } from './tiered-writer.js';

export interface TieredContentStoreOptions {
  local: LocalTier;
  remote: S3ContentStore;
  /** A background copy into the local tier failed (it is retried on a later GET). */
  onPromotionError?: (error: unknown, digest: Digest) => void;
}

export class TieredContentStore implements ContentStore {
  readonly local: LocalTier;
  readonly remote: S3ContentStore;
  readonly #promotions: Promotions;

  constructor(options: TieredContentStoreOptions) {
    this.local = options.local;
    this.remote = options.remote;
    this.#promotions = new Promotions(options.local, options.remote, options.onPromotionError);
  }

  /** Whether warm blob GETs answer with presigned S3 URLs (`storage.s3.redirect`). */
  get redirects(): boolean {
    return this.remote.config.redirect;
  }

  async stat(digest: Digest): Promise<StoredContent | undefined> {
    const local = await this.local.sizeOf(digest);
    if (local !== undefined) return { digest, size: local };
    return this.remote.stat(digest);
  }

  async open(digest: Digest, options: OpenOptions = {}): Promise<BlobBody | undefined> {
    if (options.allowRedirect && this.redirects) return this.remote.open(digest, options);
    const local = await this.local.sizeOf(digest);
    if (local !== undefined) {
      this.local.touch(digest, local);
      return this.local.content.open(digest, { knownSize: local });
    }
    const body = await this.remote.open(digest, options.range ? { range: options.range } : {});
    if (body) this.#promotions.start(digest, body.size);
    return body;
  }

  async read(digest: Digest): Promise<Buffer | undefined> {
    return (await this.local.content.read(digest)) ?? this.remote.read(digest);
  }

  async writer(options: WriterOptions = {}): Promise<ContentWriter> {
    if (options.resumable || options.resumeId !== undefined) return this.remote.writer(options);
    const local = await this.local.content.writer(options);
    let remote: ContentWriter;
    try {
      remote = await this.remote.writer(options);
    } catch (error) {
      await local.cancel(error as Error);
      throw error;
    }
    return new TieredWriter(local, remote, this.local.budget.reserve(), (stored) => this.local.added(stored.digest, stored.size));
  }

  async delete(digest: Digest): Promise<void> {
    await this.local.delete(digest);
    await this.remote.delete(digest);
  }

  list(): AsyncIterable<StoredContent> {
    return this.remote.list();
  }

  async expireWriters(before: number): Promise<string[]> {
    const [local, remote] = await Promise.all([this.local.content.expireWriters(before), this.remote.expireWriters(before)]);
    return [...local, ...remote];
  }

  async close(): Promise<void> {
    await this.#promotions.drain();
    await this.local.close();
    await this.remote.close();
  }
}
