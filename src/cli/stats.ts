/**
 * `registry-mirror stats [--config FILE] [--json] [--top N]`: what the cache holds (bytes, blobs,
 * manifests, tags) and how it has been used (hit ratio, top repositories, counted by the server
 * as metrics/answer-accounting.ts defines pulls and hits). Safe beside a running server, whose
 * latest few seconds of counts may not be flushed yet.
 */
import { openStores } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { createLogger } from '../log.js';
import type { MetadataStore, UsageCounts } from '../metadata/metadata-store.js';
import { hitRatio } from '../metrics/answer-accounting.js';
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
  /** Tags and repositories in the tag store (metadata.store "memory" keeps none between runs). */
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
  const stores = await openStores(config, createLogger('warn', process.stderr));
  try {
    const { metadata } = stores;
    const totals = await metadata.blobs.totals();
    const manifests = await manifestTotals(metadata);
    const usage = await metadata.usage.report(top);
    return {
      cacheDir: config.cache.dir,
      maxBytes: config.cache.maxBytes,
      bytes: totals.bytes + manifests.bytes,
      blobs: { count: totals.count, bytes: totals.bytes },
      manifests,
      ...(await metadata.tags.count()),
      usage: { since: usage.since, totals: usage.totals, hitRatio: hitRatio(usage.totals) },
      topRepositories: usage.repositories.map((entry) => ({ ...entry, hitRatio: hitRatio(entry) })),
    };
  } finally {
    await stores.close();
  }
}

async function manifestTotals(metadata: MetadataStore): Promise<{ count: number; bytes: number }> {
  const totals = { count: 0, bytes: 0 };
  for await (const record of metadata.manifests.entries()) {
    totals.count += 1;
    totals.bytes += record.size;
  }
  return totals;
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
