/**
 * The JSON behind `GET /api/status` and the status page: cache use against its budget, hit
 * ratio, bytes saved (bytes served from the cache, that the upstream did not have to send),
 * upstream rate limits, top repositories, and downloads under way with their progress.
 */
import type { CacheTally } from './mirror-metrics.js';
import type { RepositoryUsageEntry } from './repository-usage.js';
import type { RateLimitState } from '../upstream/rate-limits.js';

export interface StatusSources {
  startedAtMs: number;
  offline: boolean;
  cache(): { bytes: number; maxBytes: number; blobs: number };
  /** Retained bytes: hosted content and the cached blobs hosted manifests reference, outside the budget. */
  hostedBytes?(): number;
  tally(): CacheTally;
  rateLimits(): Array<RateLimitState & { upstream: string }>;
  topRepositories(): RepositoryUsageEntry[];
  /** `via`: the repository key the download goes through. */
  downloads(): Array<{ digest: string; bytesWritten: number; size?: number | undefined; via?: string }>;
  queued(): number;
  /** How cached blob bodies are sent (http/send-file.ts). */
  blobBodies: { method: 'sendfile' | 'copy'; reason: string | null };
}

export interface MirrorStatus {
  now: string;
  uptimeSeconds: number;
  offline: boolean;
  blobBodies: { method: 'sendfile' | 'copy'; reason: string | null };
  cache: { bytes: number; maxBytes: number; usedRatio: number; blobs: number; evictions: number };
  /** Hosted repositories' bytes (never evicted, not counted in cache.bytes). */
  hosted: { bytes: number };
  requests: { hits: number; misses: number; joined: number; hitRatio: number | null };
  bytes: { fromCache: number; fromUpstream: number; saved: number };
  rateLimits: Array<{ upstream: string; limit: number | null; remaining: number | null; windowSeconds: number | null; source: string | null; observedAt: string | null; blockedForSeconds: number }>;
  topRepositories: RepositoryUsageEntry[];
  downloads: { inFlight: Array<{ digest: string; bytesWritten: number; size: number | null }>; queued: number };
}

/**
 * Which repositories (metadata keys) the asking client may see named: under access rules, the
 * ones it may pull (hosted/access-rules.ts), so the status does not name, or give the digests
 * of, what the rules keep from it. Counts and totals are everyone's.
 */
export type RepositoryVisibility = (repositoryKey: string) => boolean;

export function statusReporter(sources: StatusSources, now: () => number = Date.now): (visible?: RepositoryVisibility) => MirrorStatus {
  return function mirrorStatus(visible: RepositoryVisibility = () => true): MirrorStatus {
    const at = now();
    const cache = sources.cache();
    const tally = sources.tally();
    const answered = tally.hits + tally.misses;
    return {
      now: new Date(at).toISOString(),
      uptimeSeconds: Math.round((at - sources.startedAtMs) / 1000),
      offline: sources.offline,
      blobBodies: sources.blobBodies,
      cache: { ...cache, usedRatio: cache.maxBytes > 0 ? cache.bytes / cache.maxBytes : 0, evictions: tally.evictions },
      hosted: { bytes: sources.hostedBytes?.() ?? 0 },
      requests: { hits: tally.hits, misses: tally.misses, joined: tally.joined, hitRatio: answered === 0 ? null : tally.hits / answered },
      bytes: { fromCache: tally.bytesFromCache, fromUpstream: tally.bytesFromUpstream, saved: tally.bytesFromCache },
      rateLimits: sources.rateLimits().map((state) => ({
        upstream: state.upstream,
        limit: state.limit ?? null,
        remaining: state.remaining ?? null,
        windowSeconds: state.windowSeconds ?? null,
        source: state.source ?? null,
        observedAt: state.observedAtMs === undefined ? null : new Date(state.observedAtMs).toISOString(),
        blockedForSeconds: state.blockedUntilMs === undefined ? 0 : Math.max(0, Math.ceil((state.blockedUntilMs - at) / 1000)),
      })),
      topRepositories: sources.topRepositories().filter((entry) => visible(entry.repository)),
      downloads: {
        inFlight: sources.downloads()
          .filter((download) => download.via === undefined || visible(download.via))
          .map((download) => ({ digest: download.digest, bytesWritten: download.bytesWritten, size: download.size ?? null })),
        queued: sources.queued(),
      },
    };
  };
}
