/**
 * The mirror's Prometheus metrics (prom-client), in a registry of its own per mirror so that two
 * mirrors in one process (tests) never share or clash over the global registry.
 *
 * Counters are fed as things happen (requests, cache results, bytes, upstream responses,
 * evictions); gauges read their `MetricSources` when scraped, so there is nothing to keep in sync.
 * Labels are bounded sets (route names, upstream names, statuses), never paths or digests.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { isHit, type AnswerKind } from './answer-accounting.js';

export type CacheKind = AnswerKind;
export type ServedFrom = 'cache' | 'upstream';

/** Read at scrape time. */
export interface MetricSources {
  cacheBytes(): number;
  cacheMaxBytes(): number;
  /** Retained (hosted) bytes, outside the cache budget. */
  hostedBytes?(): number;
  blobCount(): number;
  downloadsInFlight(): number;
  /** Queued blob downloads per upstream (UpstreamLimiter.stats). */
  queuedByUpstream(): Array<{ upstream: string; queued: number }>;
  rateLimits(): Array<{ upstream: string; limit: number | undefined; remaining: number | undefined }>;
}

export interface UpstreamResponseSample {
  upstream: string;
  method: string;
  kind: string;
  status: number;
  durationMs: number;
}

/** Plain tallies the status page reads without going through prom-client. */
export interface CacheTally {
  hits: number;
  misses: number;
  joined: number;
  bytesFromCache: number;
  bytesFromUpstream: number;
  evictions: number;
}

const PREFIX = 'registry_mirror_';

export class MirrorMetrics {
  readonly registry = new Registry();
  readonly tally: CacheTally = { hits: 0, misses: 0, joined: 0, bytesFromCache: 0, bytesFromUpstream: 0, evictions: 0 };
  private readonly requests;
  private readonly hits;
  private readonly misses;
  private readonly joined;
  private readonly servedBytes;
  private readonly upstreamRequests;
  private readonly upstreamSeconds;
  private readonly evictions;
  private readonly evictedBytes;
  private readonly prefetches;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    this.requests = new Counter({ name: `${PREFIX}http_requests_total`, help: 'Requests answered, by route, method and status.', labelNames: ['route', 'method', 'status'], registers });
    this.hits = new Counter({ name: `${PREFIX}cache_hits_total`, help: 'Manifests and blobs served from the cache (fresh, revalidated or stale).', labelNames: ['kind', 'result'], registers });
    this.misses = new Counter({ name: `${PREFIX}cache_misses_total`, help: 'Manifests and blobs that needed the upstream; result "joined" means a running download was joined.', labelNames: ['kind', 'result'], registers });
    this.joined = new Counter({ name: `${PREFIX}fetches_joined_total`, help: 'Blob requests that joined a download already under way (deduplicated).', registers });
    this.servedBytes = new Counter({ name: `${PREFIX}served_bytes_total`, help: 'Response body bytes sent to clients, by where they came from.', labelNames: ['source'], registers });
    this.upstreamRequests = new Counter({ name: `${PREFIX}upstream_requests_total`, help: 'Requests sent to upstreams (redirect hops and token requests included).', labelNames: ['upstream', 'method', 'kind', 'status'], registers });
    this.upstreamSeconds = new Histogram({
      name: `${PREFIX}upstream_request_duration_seconds`,
      help: 'Time until the upstream response headers arrived.',
      labelNames: ['upstream', 'method', 'kind'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.evictions = new Counter({ name: `${PREFIX}cache_evictions_total`, help: 'Blobs evicted to keep the cache within its budget.', registers });
    this.evictedBytes = new Counter({ name: `${PREFIX}cache_evicted_bytes_total`, help: 'Bytes of blobs evicted.', registers });
    this.prefetches = new Counter({
      name: `${PREFIX}prefetch_blobs_total`,
      help: 'Blobs of image manifests fetched for clients, by what the prefetch did: started a download, found one running, found it cached, skipped it (backlog full) or failed.',
      labelNames: ['outcome'],
      registers,
    });
    registerGauges(registers, sources);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  request(route: string, method: string, status: number): void {
    this.requests.inc({ route, method, status: String(status) });
  }

  /** `origin` is the registry service's answer origin; what counts as a hit is answer-accounting.ts. */
  cacheResult(kind: CacheKind, origin: string): void {
    if (isHit(origin)) {
      this.hits.inc({ kind, result: origin });
      this.tally.hits += 1;
      return;
    }
    this.misses.inc({ kind, result: origin });
    this.tally.misses += 1;
    if (origin === 'joined') {
      this.joined.inc();
      this.tally.joined += 1;
    }
  }

  served(source: ServedFrom, bytes: number): void {
    if (bytes <= 0) return;
    this.servedBytes.inc({ source }, bytes);
    if (source === 'cache') this.tally.bytesFromCache += bytes;
    else this.tally.bytesFromUpstream += bytes;
  }

  upstreamResponse(sample: UpstreamResponseSample): void {
    this.upstreamRequests.inc({ upstream: sample.upstream, method: sample.method, kind: sample.kind, status: String(sample.status) });
    this.upstreamSeconds.observe({ upstream: sample.upstream, method: sample.method, kind: sample.kind }, sample.durationMs / 1000);
  }

  /** One blob a manifest named, handled by the prefetch (pull-through/manifest-prefetch.ts). */
  prefetch(outcome: string): void {
    this.prefetches.inc({ outcome });
  }

  evicted(size: number): void {
    this.evictions.inc();
    this.evictedBytes.inc(size);
    this.tally.evictions += 1;
  }
}

function registerGauges(registers: Registry[], sources: MetricSources): void {
  const simple = (name: string, help: string, read: () => number) =>
    new Gauge({ name: `${PREFIX}${name}`, help, registers, collect() { this.set(read()); } });
  simple('cache_bytes', 'Bytes of blobs in the cache.', () => sources.cacheBytes());
  simple('cache_max_bytes', 'The cache budget (cache.maxBytes).', () => sources.cacheMaxBytes());
  simple('cache_blobs', 'Blobs in the cache.', () => sources.blobCount());
  simple('hosted_bytes', 'Bytes of hosted content (pushed, and cached blobs hosted manifests reference): never evicted, outside cache.maxBytes.', () => sources.hostedBytes?.() ?? 0);
  simple('fetches_in_flight', 'Blob downloads from upstreams under way.', () => sources.downloadsInFlight());
  new Gauge({
    name: `${PREFIX}fetches_queued`,
    help: 'Blob downloads waiting for a slot under fetch.maxConcurrent, per upstream.',
    labelNames: ['upstream'],
    registers,
    collect() {
      for (const { upstream, queued } of sources.queuedByUpstream()) this.set({ upstream }, queued);
    },
  });
  const rateLimitGauge = (name: string, help: string, pick: 'limit' | 'remaining') => new Gauge({
    name: `${PREFIX}${name}`,
    help,
    labelNames: ['upstream'],
    registers,
    collect() {
      for (const state of sources.rateLimits()) {
        const value = state[pick];
        if (value !== undefined) this.set({ upstream: state.upstream }, value);
      }
    },
  });
  rateLimitGauge('upstream_ratelimit_remaining', 'Pulls left in the upstream\'s rate-limit window, as it last said (ratelimit-remaining).', 'remaining');
  rateLimitGauge('upstream_ratelimit_limit', 'The upstream\'s pull quota per window, as it last said (ratelimit-limit).', 'limit');
}
