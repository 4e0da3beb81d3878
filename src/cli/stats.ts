/**
 * `registry-mirror stats [--config FILE] [--json] [--top N]`: what the cache holds (bytes, blobs,
 * manifests, tags) and how it has been used (hit ratio, top repositories, counted by the server
 * in metadata/usage-stats.ts). Read-only: safe beside a running server, whose latest few seconds
 * of counts may not be flushed yet.
 */
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { createKeyv } from '../metadata/create-keyv.js';
import { TagIndex, type TagRecord } from '../metadata/tag-index.js';
import { hitRatio, UsageStats, type UsageCounts, type UsageRecord } from '../metadata/usage-stats.js';
import { BlobStore } from '../store/blob-store.js';
import { listManifests } from '../store/cache-inventory.js';
import { StorePaths } from '../store/store-paths.js';
import { formatBytes } from './progress.js';
import { formatTable } from './tool-context.js';

export interface StatsCommandOptions {
  config?: string;
  json?: boolean;
  top?: string;
}

export interface CacheStats {
  cacheDir: string;
  maxBytes: number;
  bytes: number;
  blobs: { count: number; bytes: number };
  manifests: { count: number; bytes: number };
  /** Tags and repositories in the tag index (metadata.store "memory" keeps none between runs). */
  tags: number;
  repositories: number;
  usage: { since: number; totals: UsageCounts; hitRatio: number | null };
  topRepositories: Array<{ repository: string; hitRatio: number | null } & UsageCounts>;
}

export async function statsCommand(options: StatsCommandOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const stats = await collectStats(config, options.top === undefined ? 10 : Number(options.top));
  process.stdout.write(options.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
}

export async function collectStats(config: MirrorConfig, top = 10): Promise<CacheStats> {
  const store = new BlobStore(new StorePaths(config.cache.dir));
  const blobs = { count: 0, bytes: 0 };
  for await (const blob of store.list()) {
    blobs.count += 1;
    blobs.bytes += blob.size;
  }
  const { manifests: manifestFiles } = await listManifests(store.paths);
  const manifests = { count: manifestFiles.length, bytes: manifestFiles.reduce((sum, file) => sum + file.size, 0) };
  const tagKeyv = await createKeyv<TagRecord>(config, 'tags', { readOnly: true });
  const repositoryKeyv = await createKeyv<string[]>(config, 'repositories', { readOnly: true });
  const usageKeyv = await createKeyv<UsageRecord>(config, 'usage', { readOnly: true });
  try {
    const tagLists = await countTags(new TagIndex(tagKeyv, repositoryKeyv));
    const usage = await UsageStats.read(usageKeyv);
    return {
      cacheDir: config.cache.dir,
      maxBytes: config.cache.maxBytes,
      bytes: blobs.bytes + manifests.bytes,
      blobs,
      manifests,
      ...tagLists,
      usage: { since: usage.since, totals: usage.totals, hitRatio: hitRatio(usage.totals) },
      topRepositories: topRepositories(usage, top),
    };
  } finally {
    await Promise.all([tagKeyv.disconnect(), repositoryKeyv.disconnect(), usageKeyv.disconnect()]);
  }
}

async function countTags(tags: TagIndex): Promise<{ tags: number; repositories: number }> {
  let count = 0;
  const repositories = new Set<string>();
  for await (const entry of tags.list()) {
    count += 1;
    repositories.add(`${entry.upstream}/${entry.repository}`);
  }
  return { tags: count, repositories: repositories.size };
}

function topRepositories(usage: UsageRecord, top: number): CacheStats['topRepositories'] {
  return Object.entries(usage.repositories)
    .sort(([, a], [, b]) => b.pulls - a.pulls || b.hits + b.misses - (a.hits + a.misses))
    .slice(0, top)
    .map(([repository, counts]) => ({ repository, ...counts, hitRatio: hitRatio(counts) }));
}

function formatStats(stats: CacheStats): string {
  const percent = (ratio: number | null) => (ratio === null ? '-' : `${(ratio * 100).toFixed(1)}%`);
  const lines = [
    `cache       ${stats.cacheDir}`,
    `size        ${formatBytes(stats.bytes)} of ${formatBytes(stats.maxBytes)} (${percent(stats.bytes / stats.maxBytes)})`,
    `blobs       ${stats.blobs.count} (${formatBytes(stats.blobs.bytes)})`,
    `manifests   ${stats.manifests.count} (${formatBytes(stats.manifests.bytes)})`,
    `tags        ${stats.tags} in ${stats.repositories} repositories`,
    `hit ratio   ${percent(stats.usage.hitRatio)} (${stats.usage.totals.hits} hits, ${stats.usage.totals.misses} misses, ${stats.usage.totals.pulls} pulls since ${new Date(stats.usage.since).toISOString()})`,
    '',
  ];
  if (stats.topRepositories.length === 0) return `${lines.join('\n')}no pulls recorded yet\n`;
  const rows = stats.topRepositories.map((entry) => [entry.repository, String(entry.pulls), String(entry.hits), String(entry.misses), percent(entry.hitRatio)]);
  return `${lines.join('\n')}${formatTable(['REPOSITORY', 'PULLS', 'HITS', 'MISSES', 'HIT RATIO'], rows)}\n`;
}
