/**
 * `registry-mirror verify [--config FILE]`: re-hashes every cached blob and manifest and removes
 * those that do not match their digest (they are fetched again on their next pull).
 *
 * Exit status: 0 when everything matched, 1 when something was removed (so a cron job or a
 * monitoring probe notices a disk that corrupts data), 2 for a bad config or command line.
 * Safe beside a running server on the same cache.
 */
import { openStores } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { verifyContent } from '../storage/verify-content.js';
import { formatBytes } from './progress.js';

export interface VerifyCommandOptions {
  config?: string;
  json?: boolean;
}

export async function verifyCommand(options: VerifyCommandOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const stores = await openStores(config, createLogger('warn', process.stderr));
  let report;
  try {
    report = await verifyContent(stores, {
      onRemoved: (kind, digest, reason) => {
        if (!options.json) process.stdout.write(`removed ${kind} ${digest}: ${reason}\n`);
      },
    });
  } finally {
    await stores.close();
  }
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
