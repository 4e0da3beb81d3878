/**
 * `registry-mirror prune --max-bytes N [--config FILE]`: shrinks the cache's blobs to N bytes
 * (a byte count or a size such as "10GiB") offline, with the server's own policy: the index is
 * rebuilt from disk exactly as at start-up (eviction/blob-lru.ts, recency from file mtimes) and
 * the least recently used blobs are evicted until the rest fits.
 *
 * Run it while the server is stopped, or lower `cache.maxBytes` and restart instead: a running
 * server does not learn that files went away (it fetches them again when asked).
 */
import { loadConfig } from '../config/load-config.js';
import { parseByteSize } from '../config/mirror-config.js';
import { BlobLru } from '../eviction/blob-lru.js';
import { BlobStore } from '../store/blob-store.js';
import { StorePaths } from '../store/store-paths.js';
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
  const report = await pruneCache(config.cache.dir, maxBytes);
  process.stdout.write(
    `evicted ${report.evicted} blobs (${formatBytes(report.evictedBytes)}); ` +
    `${report.remaining} blobs (${formatBytes(report.remainingBytes)}) remain within ${formatBytes(maxBytes)}\n`,
  );
}

export async function pruneCache(cacheDir: string, maxBytes: number): Promise<PruneReport> {
  const report: PruneReport = { evicted: 0, evictedBytes: 0, remaining: 0, remainingBytes: 0 };
  const lru = new BlobLru(new BlobStore(new StorePaths(cacheDir)), maxBytes, {
    onEvict: (_digest, size) => {
      report.evicted += 1;
      report.evictedBytes += size;
    },
  });
  await lru.rebuild();
  await lru.idle();
  report.remaining = lru.count;
  report.remainingBytes = lru.totalBytes;
  return report;
}
