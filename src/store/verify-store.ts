/**
 * Re-hashes every cached blob and manifest and removes those whose bytes no longer match their
 * digest (bit rot, a disk that lost writes, hands in the cache directory). A removed blob or
 * manifest is simply fetched again on its next pull. Safe beside a running server: a reader
 * holding the file keeps its bytes, and the server treats a missing file as not cached.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import pLimit from 'p-limit';
import { createDigester, type Digest } from '../domain/digest.js';
import type { BlobStore } from './blob-store.js';
import { listManifests } from './cache-inventory.js';

export interface VerifyReport {
  blobs: { checked: number; bytes: number; removed: string[] };
  manifests: { checked: number; removed: string[] };
  /** Temp files of interrupted manifest writes, removed. */
  leftovers: number;
}

export interface VerifyOptions {
  /** Files hashed at once; default 4 (hashing is CPU-bound, reading is I/O-bound). */
  concurrency?: number;
  onRemoved?: (kind: 'blob' | 'manifest', digest: string, reason: string) => void;
}

export async function verifyStore(store: BlobStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const limit = pLimit(options.concurrency ?? 4);
  const report: VerifyReport = { blobs: { checked: 0, bytes: 0, removed: [] }, manifests: { checked: 0, removed: [] }, leftovers: 0 };
  const checks: Array<Promise<void>> = [];
  for await (const blob of store.list()) {
    checks.push(limit(async () => {
      const actual = await hashFile(store.paths.blob(blob.digest), blob.digest);
      report.blobs.checked += 1;
      report.blobs.bytes += blob.size;
      if (actual === blob.digest.hex) return;
      await store.delete(blob.digest);
      report.blobs.removed.push(blob.digest.value);
      options.onRemoved?.('blob', blob.digest.value, `hashes to ${actual}`);
    }));
  }
  const { manifests, leftovers } = await listManifests(store.paths);
  for (const manifest of manifests) {
    checks.push(limit(async () => {
      const actual = await hashFile(manifest.path, manifest.digest);
      report.manifests.checked += 1;
      if (actual === manifest.digest.hex && manifest.hasType) return;
      // The manifest goes first: a published manifest must never lack its media type.
      await rm(manifest.path, { force: true });
      await rm(store.paths.manifestType(manifest.digest), { force: true });
      report.manifests.removed.push(manifest.digest.value);
      options.onRemoved?.('manifest', manifest.digest.value, manifest.hasType ? `hashes to ${actual}` : 'its media type file is missing');
    }));
  }
  await Promise.all(checks);
  await Promise.all(leftovers.map((file) => rm(file, { force: true })));
  report.leftovers = leftovers.length;
  return report;
}

async function hashFile(file: string, digest: Digest): Promise<string> {
  const hash = createDigester(digest.algorithm);
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
