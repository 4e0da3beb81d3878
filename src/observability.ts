/**
 * compose.ts's helper for everything an operator watches: upstream rate limits, Prometheus
 * metrics, per-repository usage, readiness and the status report. It is built before the parts
 * it watches (the LRU reports evictions and the upstream clients report responses into it from
 * the start), and is shown those parts with `watch` once they exist; gauges read them lazily.
 */
import type { Logger } from 'pino';
import type { MirrorConfig } from './config/mirror-config.js';
import type { CacheBudget } from './eviction/cache-budget.js';
import { Readiness } from './health/readiness.js';
import { blobBodyMethod } from './http/send-file.js';
import { MirrorMetrics } from './metrics/mirror-metrics.js';
import { statusReporter, type MirrorStatus, type RepositoryVisibility } from './metrics/mirror-status.js';
import { RepositoryUsage } from './metrics/repository-usage.js';
import type { UsageRecorder } from './metrics/usage-recorder.js';
import type { BlobDownloads } from './pull-through/blob-downloads.js';
import { rateLimitedUpstream } from './pull-through/rate-limited-upstream.js';
import type { UpstreamConcurrency } from './pull-through/upstream-limiter.js';
import type { UpstreamPort } from './pull-through/upstream-port.js';
import { UpstreamRateLimits } from './upstream/rate-limits.js';
import type { UpstreamResponseInfo } from './upstream/upstream-registry.js';

export interface WatchedParts {
  budget: CacheBudget;
  limiter: UpstreamConcurrency;
  downloads: BlobDownloads;
  /** Persisted usage for `registry-mirror stats`. */
  recorder: UsageRecorder;
}

const TOP_REPOSITORIES = 10;

export class Observability {
  readonly rateLimits = new UpstreamRateLimits();
  readonly usage = new RepositoryUsage();
  readonly readiness: Readiness;
  readonly metrics: MirrorMetrics;
  readonly status: (visible?: RepositoryVisibility) => MirrorStatus;
  private parts: WatchedParts | undefined;

  constructor(config: MirrorConfig, private readonly log: Logger) {
    this.readiness = new Readiness(config.cache.dir, log);
    const upstreamNames = Object.keys(config.upstreams);
    this.metrics = new MirrorMetrics({
      cacheBytes: () => this.parts?.budget.totalBytes ?? 0,
      cacheMaxBytes: () => config.cache.maxBytes,
      hostedBytes: () => this.parts?.budget.retainedBytes ?? 0,
      blobCount: () => this.parts?.budget.count ?? 0,
      downloadsInFlight: () => this.parts?.downloads.list().length ?? 0,
      queuedByUpstream: () => upstreamNames.map((upstream) => ({ upstream, queued: this.parts?.limiter.stats(upstream).queued ?? 0 })),
      rateLimits: () => this.rateLimits.snapshot(),
    });
    this.status = statusReporter({
      startedAtMs: Date.now(),
      offline: config.offline,
      blobBodies: blobBodyMethod(config),
      cache: () => ({ bytes: this.parts?.budget.totalBytes ?? 0, maxBytes: config.cache.maxBytes, blobs: this.parts?.budget.count ?? 0 }),
      hostedBytes: () => this.parts?.budget.retainedBytes ?? 0,
      tally: () => this.metrics.tally,
      rateLimits: () => this.rateLimits.snapshot(),
      topRepositories: () => this.usage.top(TOP_REPOSITORIES),
      downloads: () => this.parts?.downloads.list() ?? [],
      queued: () => upstreamNames.reduce((sum, upstream) => sum + (this.parts?.limiter.stats(upstream).queued ?? 0), 0),
    });
  }

  watch(parts: WatchedParts): void {
    this.parts = parts;
  }

  /** UpstreamRegistry's onResponse: rate-limit headers, upstream metrics. */
  readonly onUpstreamResponse = (info: UpstreamResponseInfo): void => {
    this.rateLimits.observe(info);
    this.metrics.upstreamResponse(info);
    // Headers stay out of the line: they carry tokens and signed redirect URLs.
    this.log.debug({ upstream: info.upstream, method: info.method, kind: info.kind, status: info.status, durationMs: Math.round(info.durationMs) }, 'upstream response');
  };

  readonly onEvict = (_digest: string, size: number): void => {
    this.metrics.evicted(size);
  };

  /** The upstreams as the pull-through layer should see them: no manifest GETs while rate-limited. */
  guardUpstreams(upstreams: Map<string, UpstreamPort>): Map<string, UpstreamPort> {
    return new Map([...upstreams].map(([name, upstream]) => [name, rateLimitedUpstream(upstream, this.rateLimits)]));
  }

  /** What createApp needs for the access log and the operational endpoints. */
  get http() {
    return { metrics: this.metrics, usage: this.usage, recorder: this.parts?.recorder, readiness: this.readiness, status: this.status };
  }

  markShuttingDown(): void {
    this.readiness.markShuttingDown();
  }
}
