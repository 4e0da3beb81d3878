/**
 * `registry-mirror gc [--dry-run] [--json] [--config FILE]`: one garbage collection of hosted
 * content (hosted/garbage-collect.ts): unreferenced hosted blobs and untagged manifests older
 * than `hosted.gc.graceSeconds`, and expired upload sessions. Safe while `serve` runs on the
 * same cache, in another process: the collection is online (grace period, last use read again
 * before each removal), and cached content is never deleted by it.
 */
import { createRouter, openStores } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { garbageCollect, type GarbageCollectReport } from '../hosted/garbage-collect.js';
import { UploadSessions } from '../hosted/upload-sessions.js';
import { createLogger } from '../log.js';
import { formatBytes } from './progress.js';

export interface GcCommandOptions {
  config?: string;
  dryRun?: boolean;
  json?: boolean;
}

export async function gcCommand(options: GcCommandOptions): Promise<void> {
  const config = await loadConfig(options.config);
  const report = await collectGarbage(config, { dryRun: options.dryRun === true });
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  const verb = report.dryRun ? 'would delete' : 'deleted';
  process.stdout.write(
    `${report.repositories} hosted repositories: ${report.manifestsKept} manifests kept, ${report.manifestsRemoved} untagged manifests ${report.dryRun ? 'would be ' : ''}removed; ` +
    `${verb} ${report.blobsDeleted} blobs (${formatBytes(report.bytesDeleted)}); ${report.blobsReleased} cached blobs ${report.dryRun ? 'would be ' : ''}returned to the cache; ` +
    `${report.uploadsExpired} expired uploads removed\n`,
  );
}

export async function collectGarbage(config: MirrorConfig, options: { dryRun: boolean; now?: number }): Promise<GarbageCollectReport> {
  const stores = await openStores(config, createLogger('warn', process.stderr));
  try {
    const router = createRouter(config);
    const uploads = new UploadSessions({ content: stores.content, uploads: stores.metadata.uploads, expiryMs: config.hosted.uploadExpirySeconds * 1000 });
    return await garbageCollect({
      metadata: stores.metadata, content: stores.content, graceMs: config.hosted.gc.graceSeconds * 1000, dryRun: options.dryRun,
      isHosted: (key) => router.targetOfKey(key).kind === 'hosted',
      expireUploads: (now) => uploads.expire(now),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  } finally {
    await stores.close();
  }
}
