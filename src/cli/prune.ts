/**
 * `registry-mirror prune --max-bytes N [--config FILE]`: shrinks the cache's blobs to N bytes
 * (a byte count or a size such as "10GiB") with the server's own policy (eviction/cache-budget.ts):
 * the blob index is brought in line with the content store as at start-up, then the least
 * recently used blobs are evicted until the rest fits.
 *
 * The index and its recency are shared with a running server (the metadata store), so the two
 * agree on what goes first; lowering `cache.maxBytes` and restarting does the same.
 */
import { openStores } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import { parseByteSize, type MirrorConfig } from '../config/mirror-config.js';
import { CacheBudget } from '../eviction/cache-budget.js';
import { createLogger } from '../log.js';
import { formatBytes } from './progress.js';

export interface PruneCommandOptions {
  config?: string;
  maxBytes: string;
}

export interface PruneReport {
  evicted: number;
  evictedBytes: number;
  remaining: number;
  remainingBytes: number;
}

export async function pruneCommand(options: PruneCommandOptions): Promise<void> {
  const maxBytes = parseByteSize('--max-bytes', /^[0-9]+$/.test(options.maxBytes) ? Number(options.maxBytes) : options.maxBytes);
  const config = await loadConfig(options.config);
  const report = await pruneCache(config, maxBytes);
  process.stdout.write(
    `evicted ${report.evicted} blobs (${formatBytes(report.evictedBytes)}); ` +
    `${report.remaining} blobs (${formatBytes(report.remainingBytes)}) remain within ${formatBytes(maxBytes)}\n`,
  );
}

export async function pruneCache(config: MirrorConfig, maxBytes: number): Promise<PruneReport> {
  const report: PruneReport = { evicted: 0, evictedBytes: 0, remaining: 0, remainingBytes: 0 };
  const stores = await openStores(config, createLogger('warn', process.stderr));
  const budget = new CacheBudget({
    content: stores.content, metadata: stores.metadata, maxBytes,
    onEvict: (_digest, size) => {
      report.evicted += 1;
      report.evictedBytes += size;
    },
  });
  try {
    await budget.start('await');
    await budget.idle();
    report.remaining = budget.count;
    report.remainingBytes = budget.totalBytes;
  } finally {
    await budget.close();
    await stores.close();
  }
  return report;
}
