/**
 * What a hosted repository holds, over the shared stores: content is stored once per digest
 * whatever its origin (a pushed layer and the same layer cached from an upstream are one file),
 * and a repository holds a digest when the metadata links it (pushed or mounted there). Hosted
 * content is indexed `retained`, so the LRU never evicts it; the cache budget then counts only
 * what it may evict (eviction/cache-budget.ts).
 */
import { parseDigest, type Digest } from '../domain/digest.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { ContentStore } from '../storage/content-store.js';
import type { ManifestStore } from '../storage/manifest-store.js';

export interface HostedStores {
  content: ContentStore;
  metadata: MetadataStore;
  manifests: ManifestStore;
  budget: CacheBudget;
}

export class HostedContent {
  constructor(readonly stores: HostedStores) {}

  /** The size of a blob `repository` holds; undefined when it holds none by that digest. */
  async blobSize(repository: string, digest: Digest): Promise<number | undefined> {
    if (!(await this.stores.metadata.links.has(repository, digest.value))) return undefined;
    return this.stores.budget.sizeOf(digest.value) ?? (await this.stores.budget.lookup(digest.value));
  }

  /** True when `repository` holds the manifest `digest`. */
  async hasManifest(repository: string, digest: string): Promise<boolean> {
    const { links, manifests } = this.stores.metadata;
    return (await links.has(repository, digest)) && (await manifests.get(digest)) !== undefined;
  }

  /** A repository exists while it has a tag or holds any content. */
  async exists(repository: string): Promise<boolean> {
    if ((await this.stores.metadata.tags.list(repository, { n: 1 })).length > 0) return true;
    for await (const _digest of this.stores.metadata.links.digests(repository)) return true;
    return false;
  }

  /**
   * Records that `repository` holds the content `digest` (a committed upload, a mount, a
   * manifest): indexed as retained with its use set to now, which also starts its grace period
   * before garbage collection (hosted/garbage-collect.ts), then linked.
   */
  async add(repository: string, digest: string, size: number): Promise<void> {
    await this.stores.metadata.blobs.put(digest, size, { retained: true, usedAt: Date.now() });
    await this.stores.metadata.links.add(repository, digest);
    await this.stores.budget.refresh();
  }

  /** Cached blobs a hosted manifest references are retained too: the LRU must not take them from under it. */
  async retain(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await this.stores.metadata.blobs.setRetained(digests, true);
    await this.stores.budget.refresh();
  }

  /** Tags of `repository` that point at `digest`. */
  async tagsPointingAt(repository: string, digest: string): Promise<string[]> {
    const { tags } = this.stores.metadata;
    const names = await tags.list(repository);
    const records = await Promise.all(names.map((tag) => tags.get(repository, tag)));
    return names.filter((_tag, index) => records[index]?.digest === digest);
  }

  /** True when the content store holds `digest` (a blob anyone pushed or any upstream sent). */
  async held(digest: string): Promise<number | undefined> {
    return this.stores.budget.sizeOf(digest) ?? (await this.stores.content.stat(parseDigest(digest)))?.size;
  }
}
