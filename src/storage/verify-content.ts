/**
 * Re-hashes everything the content store holds and removes what no longer matches its digest
 * (bit rot, a disk that lost writes, hands in the cache directory), together with its metadata
 * records; records whose content is gone are dropped too. A removed blob or manifest is simply
 * fetched again on its next pull. Safe beside a running server: a reader holding a file keeps its
 * bytes, and the server treats content it cannot find as not cached.
 */
import pLimit from 'p-limit';
import { createDigester, parseDigest, type Digest } from '../domain/digest.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { ContentStore } from './content-store.js';
import { readContent } from './read-content.js';

export interface VerifyReport {
  blobs: { checked: number; bytes: number; removed: string[] };
  manifests: { checked: number; removed: string[] };
}

export interface VerifyOptions {
  /** Contents hashed at once; default 4 (hashing is CPU-bound, reading is I/O-bound). */
  concurrency?: number;
  onRemoved?: (kind: 'blob' | 'manifest', digest: string, reason: string) => void;
}

type Stores = { content: ContentStore; metadata: Pick<MetadataStore, 'blobs' | 'manifests' | 'links'> };

export async function verifyContent({ content, metadata }: Stores, options: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { blobs: { checked: 0, bytes: 0, removed: [] }, manifests: { checked: 0, removed: [] } };
  const manifests = new Set<string>();
  for await (const record of metadata.manifests.entries()) manifests.add(record.digest);
  const remove = async (digest: Digest, kind: 'blob' | 'manifest', reason: string) => {
    await content.delete(digest);
    await Promise.all([metadata.blobs.delete(digest.value), metadata.manifests.delete(digest.value), metadata.links.removeDigest(digest.value)]);
    report[`${kind}s`].removed.push(digest.value);
    options.onRemoved?.(kind, digest.value, reason);
  };
  const limit = pLimit(options.concurrency ?? 4);
  const checks: Array<Promise<void>> = [];
  for await (const stored of content.list()) {
    checks.push(limit(async () => {
      const kind = manifests.delete(stored.digest.value) ? 'manifest' : 'blob';
      const actual = await hashOf(content, stored.digest);
      report[`${kind}s`].checked += 1;
      if (kind === 'blob') report.blobs.bytes += stored.size;
      if (actual !== stored.digest.hex) await remove(stored.digest, kind, actual === undefined ? 'it could not be read' : `hashes to ${actual}`);
    }));
  }
  await Promise.all(checks);
  // Manifest records the listing did not meet: their bytes are gone.
  for (const digest of manifests) await remove(parseDigest(digest), 'manifest', 'its bytes are missing');
  return report;
}

async function hashOf(content: ContentStore, digest: Digest): Promise<string | undefined> {
  const stream = await readContent(content, digest).catch(() => undefined);
  if (!stream) return undefined;
  const hash = createDigester(digest.algorithm);
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
