/**
 * Garbage collection of hosted content (issue 14 "Garbage collection"): online mark and sweep
 * with a grace period, so it can run beside `serve` (even in another process) without breaking
 * a push in progress (distribution's offline GC corrupts images pushed while it runs:
 * distribution#3045, #3254).
 *
 *   mark   per hosted repository, from every tag, and from every manifest younger than the
 *          grace period (an index's children are pushed before the index tags them), through
 *          index entries, configs and layers, and to the referrers of what is kept (signatures
 *          and SBOMs are untagged: their subject keeps them);
 *   sweep  untagged, unreachable manifests older than the grace period leave their repository;
 *          retained content no kept manifest references and not used within the grace period
 *          goes: deleted when nothing else holds it, given back to the LRU when a proxied
 *          repository holds it too (cached content is never deleted here);
 *          expired upload sessions go with their bytes.
 *
 * A push touches the content its manifest references before checking it is there
 * (manifest-pushes.ts), and the sweep reads each candidate's last use again just before
 * removing it, so a push that reuses old content either keeps it or is refused with
 * MANIFEST_BLOB_UNKNOWN; it never ends with a manifest whose layers are gone.
 */
import { parseDigest } from '../domain/digest.js';
import type { BlobRecord, MetadataStore } from '../metadata/metadata-store.js';
import type { ContentStore } from '../storage/content-store.js';

export interface GarbageCollectOptions {
  metadata: MetadataStore;
  content: ContentStore;
  /** True for the catalog key of a hosted repository (upstream/upstream-router.ts `targetOfKey`). */
  isHosted(key: string): boolean;
  graceMs: number;
  /** Report what would go, change nothing. */
  dryRun?: boolean;
  /** Expires upload sessions (upload-sessions.ts); resolves with how many. */
  expireUploads?(now: number): Promise<number>;
  /** Content that left the store (the budget forgets its size). */
  onDeleted?(digest: string): void;
  now?: number;
}

export interface GarbageCollectReport {
  repositories: number;
  manifestsKept: number;
  manifestsRemoved: number;
  blobsDeleted: number;
  bytesDeleted: number;
  /** Cached blobs no hosted manifest needs any more: evictable again. */
  blobsReleased: number;
  uploadsExpired: number;
  dryRun: boolean;
}

export async function garbageCollect(options: GarbageCollectOptions): Promise<GarbageCollectReport> {
  const now = options.now ?? Date.now();
  const report: GarbageCollectReport = { repositories: 0, manifestsKept: 0, manifestsRemoved: 0, blobsDeleted: 0, bytesDeleted: 0, blobsReleased: 0, uploadsExpired: 0, dryRun: options.dryRun === true };
  const marked = new Set<string>();
  for await (const repository of hostedRepositories(options)) {
    report.repositories += 1;
    await collectRepository(options, repository, now, marked, report);
  }
  await sweepContent(options, now, marked, report);
  if (options.expireUploads && !options.dryRun) report.uploadsExpired = await options.expireUploads(now);
  return report;
}

async function* hostedRepositories(options: GarbageCollectOptions): AsyncIterable<string> {
  let last: string | undefined;
  for (;;) {
    const page = await options.metadata.catalog.list({ n: 500, ...(last === undefined ? {} : { last }) });
    for (const key of page) if (options.isHosted(key)) yield key;
    if (page.length < 500) return;
    last = page.at(-1)!;
  }
}

/** Marks what the repository keeps (into `marked`), unlinks the manifests it does not. */
async function collectRepository(options: GarbageCollectOptions, repository: string, now: number, marked: Set<string>, report: GarbageCollectReport): Promise<void> {
  const { metadata } = options;
  const linkedManifests: string[] = [];
  for await (const digest of metadata.links.digests(repository)) if (await metadata.manifests.get(digest)) linkedManifests.push(digest);
  const roots = new Set<string>();
  for (const tag of await metadata.tags.list(repository)) {
    const record = await metadata.tags.get(repository, tag);
    if (record) roots.add(record.digest);
  }
  for (const digest of linkedManifests) if (await isYoung(metadata, digest, now, options.graceMs)) roots.add(digest);
  const kept = await markFrom(metadata, repository, roots, marked);
  for (const digest of linkedManifests) {
    if (kept.has(digest)) continue;
    report.manifestsRemoved += 1;
    if (!options.dryRun) await metadata.links.remove(repository, digest);
  }
  report.manifestsKept += kept.size;
  if (!options.dryRun && kept.size === 0 && roots.size === 0 && !(await holdsAnything(metadata, repository))) await metadata.catalog.remove(repository);
}

/** The manifests reachable from `roots` in the repository; they and everything they reference go into `marked`. */
async function markFrom(metadata: MetadataStore, repository: string, roots: Set<string>, marked: Set<string>): Promise<Set<string>> {
  const kept = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const digest = queue.pop()!;
    if (kept.has(digest)) continue;
    const record = await metadata.manifests.get(digest);
    if (!record) continue;
    kept.add(digest);
    marked.add(digest);
    for (const reference of record.references) {
      marked.add(reference);
      if (!kept.has(reference)) queue.push(reference);
    }
    for (const referrer of await metadata.manifests.referrers(repository, digest)) queue.push(referrer.digest);
  }
  return kept;
}

async function sweepContent(options: GarbageCollectOptions, now: number, marked: Set<string>, report: GarbageCollectReport): Promise<void> {
  const candidates: BlobRecord[] = [];
  for await (const record of options.metadata.blobs.entries()) if (record.retained && !marked.has(record.digest)) candidates.push(record);
  for (const candidate of candidates) {
    // Read again: a push may have touched it since the mark began.
    const record = await options.metadata.blobs.get(candidate.digest);
    if (!record?.retained || (await isYoung(options.metadata, record.digest, now, options.graceMs))) continue;
    await sweepOne(options, record, report);
  }
}

async function sweepOne(options: GarbageCollectOptions, record: BlobRecord, report: GarbageCollectReport): Promise<void> {
  const { metadata, content } = options;
  const holders = await metadata.links.repositories(record.digest, 10_000);
  const proxied = holders.filter((key) => !options.isHosted(key));
  if (proxied.length > 0) {
    report.blobsReleased += 1;
    if (options.dryRun) return;
    for (const key of holders) if (options.isHosted(key)) await metadata.links.remove(key, record.digest);
    await metadata.blobs.setRetained([record.digest], false);
    return;
  }
  report.blobsDeleted += 1;
  report.bytesDeleted += record.size;
  if (options.dryRun) return;
  await metadata.links.removeDigest(record.digest);
  await metadata.blobs.delete(record.digest);
  if (await metadata.manifests.get(record.digest)) await metadata.manifests.delete(record.digest);
  await content.delete(parseDigest(record.digest));
  options.onDeleted?.(record.digest);
}

/** Used (pushed, mounted, referenced by a push, pulled) within the grace period; content without a record counts as young. */
async function isYoung(metadata: MetadataStore, digest: string, now: number, graceMs: number): Promise<boolean> {
  const record = await metadata.blobs.get(digest);
  return record === undefined || record.usedAt > now - graceMs;
}

async function holdsAnything(metadata: MetadataStore, repository: string): Promise<boolean> {
  if ((await metadata.tags.list(repository, { n: 1 })).length > 0) return true;
  for await (const _digest of metadata.links.digests(repository)) return true;
  return false;
}
