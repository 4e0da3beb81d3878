/**
 * The content store `storage.driver` names: the local disk under `cache.dir` (filesystem, the
 * default), or a bucket with a local hot tier under `cache.dir` (s3). The AWS SDK is loaded only
 * when chosen: it adds megabytes to a process that never uses it.
 */
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/mirror-config.js';
import type { ContentStore } from '../storage/content-store.js';
import { FsContentStore } from '../storage/fs/fs-content-store.js';
import type { S3ContentStore } from '../storage/s3/s3-content-store.js';
import { LocalTier } from './local-tier.js';
import { TieredContentStore } from './tiered-content-store.js';

export interface OpenedContentStore {
  content: ContentStore;
  /** With s3: the local copy of hot blobs, bounded by cache.maxBytes. */
  localTier?: LocalTier;
  /** With s3: the bucket (readiness checks it). */
  bucket?: S3ContentStore;
}

export async function openContentStore(config: Pick<MirrorConfig, 'cache' | 'storage'>, log: Logger): Promise<OpenedContentStore> {
  if (config.storage.driver !== 's3' || !config.storage.s3) return { content: await FsContentStore.open(config.cache.dir) };
  const { S3ContentStore } = await import('../storage/s3/s3-content-store.js');
  const bucket = new S3ContentStore(config.storage.s3);
  let localTier: LocalTier;
  try {
    localTier = await LocalTier.open({
      dir: config.cache.dir,
      maxBytes: config.cache.maxBytes,
      onEvict: (digest, size) => log.debug({ digest, size }, 'evicted the local copy of a blob'),
      onError: (error) => log.warn({ err: error }, 'local tier housekeeping failed'),
    });
  } catch (error) {
    await bucket.close();
    throw error;
  }
  const content = new TieredContentStore({
    local: localTier,
    remote: bucket,
    onPromotionError: (error, digest) => log.warn({ err: error, digest: digest.value }, 'copying a blob from S3 into the local tier failed'),
  });
  return { content, localTier, bucket };
}
