/**
 * Brings the metadata blob index in line with what the content store holds, at start-up:
 *   - content the index does not know and no manifest record claims is indexed, its recency
 *     seeded from the store's modification time (a cache of an earlier release kept recency in
 *     file mtimes; a crash between a commit and its index write leaves such content too);
 *   - records whose content is gone (removed by `verify` or by hand) are dropped, with their links.
 * The index is read before the store is listed, so content committed meanwhile by another
 * process is at worst indexed twice, which is an upsert.
 */
import { parseDigest } from '../domain/digest.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { ContentStore } from '../storage/content-store.js';

export interface ReconcileResult {
  indexed: number;
  dropped: number;
}

export async function reconcileBlobIndex(content: ContentStore, metadata: Pick<MetadataStore, 'blobs' | 'manifests' | 'links'>, stopped: () => boolean): Promise<ReconcileResult> {
  const result: ReconcileResult = { indexed: 0, dropped: 0 };
  const indexed = new Set<string>();
  for await (const record of metadata.blobs.entries()) indexed.add(record.digest);
  const manifests = new Set<string>();
  for await (const record of metadata.manifests.entries()) manifests.add(record.digest);
  const now = Date.now();
  for await (const entry of content.list()) {
    if (stopped()) return result;
    const digest = entry.digest.value;
    if (indexed.delete(digest) || manifests.has(digest)) continue;
    await metadata.blobs.put(digest, entry.size, { usedAt: Math.round(Math.min(entry.modifiedAt ?? now, now)) });
    result.indexed += 1;
  }
  // What is left in `indexed` was not found in the store.
  for (const digest of indexed) {
    if (stopped()) return result;
    if ((await content.stat(parseDigest(digest))) !== undefined) continue;
    await metadata.blobs.delete(digest);
    await metadata.links.removeDigest(digest);
    result.dropped += 1;
  }
  return result;
}
