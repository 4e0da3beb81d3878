/**
 * `storage.s3` in the mirror's config (issue 15, item 1):
 *
 *   "storage": { "driver": "s3", "s3": { "endpoint": "...", "bucket": "...", "region": "...",
 *                "forcePathStyle": true, "prefix": "", "redirect": false } }
 *
 * Credentials are not part of it: they come from the standard AWS environment and credential
 * chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance roles).
 */
export interface S3StorageConfig {
  /** An S3-compatible endpoint (MinIO, Ceph RGW, R2...); absent: AWS S3 for `region`. */
  endpoint?: string;
  bucket: string;
  /** Default us-east-1 (what most S3-compatible servers expect in signatures). */
  region?: string;
  /** Bucket in the path (`endpoint/bucket/key`), as most S3-compatible servers need; default false. */
  forcePathStyle?: boolean;
  /** Key prefix for everything the mirror stores, e.g. "mirror/"; default "". */
  prefix?: string;
  /** Warm blob GETs answer 307 to a presigned S3 URL instead of streaming through the mirror. */
  redirect?: boolean;
}

export interface ResolvedS3StorageConfig {
  endpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  prefix: string;
  redirect: boolean;
}

export class S3ConfigError extends Error {
  override name = 'S3ConfigError';
}

// S3 bucket naming rules (also what Ceph RGW accepts with its default strict naming).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function resolveS3StorageConfig(config: S3StorageConfig): ResolvedS3StorageConfig {
  if (typeof config.bucket !== 'string' || !BUCKET.test(config.bucket)) {
    throw new S3ConfigError(`storage.s3.bucket: expected an S3 bucket name (3-63 of a-z, 0-9, '.', '-'), got ${JSON.stringify(config.bucket)}`);
  }
  if (config.endpoint !== undefined) checkEndpoint(config.endpoint);
  const prefix = config.prefix ?? '';
  if (prefix.startsWith('/') || prefix.includes('//')) {
    throw new S3ConfigError(`storage.s3.prefix: expected a key prefix without a leading '/' or empty segments, got ${JSON.stringify(prefix)}`);
  }
  return {
    endpoint: config.endpoint,
    bucket: config.bucket,
    region: config.region || 'us-east-1',
    forcePathStyle: config.forcePathStyle ?? false,
    // "mirror" and "mirror/" mean the same folder; keys never run into the prefix ("mirrorblobs/").
    prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
    redirect: config.redirect ?? false,
  };
}

function checkEndpoint(endpoint: string): void {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    throw new S3ConfigError(`storage.s3.endpoint: expected an http:// or https:// URL, got ${JSON.stringify(endpoint)}`);
  }
}
