/**
 * `registry-mirror verify [--config FILE]`: re-hashes every cached blob and manifest and removes
 * those that do not match their digest (they are fetched again on their next pull).
 *
 * Exit status: 0 when everything matched, 1 when something was removed (so a cron job or a
 * monitoring probe notices a disk that corrupts data), 2 for a bad config or command line.
 * Safe beside a running server on the same cache.
 */
import { loadConfig } from '../config/load-config.js';
import { BlobStore } from '../store/blob-store.js';
import { StorePaths } from '../store/store-paths.js';
import { verifyStore } from '../store/verify-store.js';
import { formatBytes } from './progress.js';

export interface VerifyCommandOptions {
  config?: string;
  json?: boolean;
}

export async function verifyCommand(options: VerifyCommandOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const store = new BlobStore(new StorePaths(config.cache.dir));
  const report = await verifyStore(store, {
    onRemoved: (kind, digest, reason) => {
      if (!options.json) process.stdout.write(`removed ${kind} ${digest}: ${reason}\n`);
    },
  });
  const removed = report.blobs.removed.length + report.manifests.removed.length;
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(
      `verified ${report.blobs.checked} blobs (${formatBytes(report.blobs.bytes)}) and ${report.manifests.checked} manifests in ${config.cache.dir}\n` +
      `removed ${report.blobs.removed.length} corrupt blobs and ${report.manifests.removed.length} corrupt manifests\n`,
    );
  }
  if (removed > 0) process.exitCode = 1;
}
