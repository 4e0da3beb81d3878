/**
 * The one function that knows every module and the only place that picks backends: the content
 * store (the filesystem), the metadata store (`metadata.store`), flights (in process), the
 * upstream clients, the pull-through registry service and the HTTP app, from a validated config.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { createApp, createWarmBlobLane, type AppDependencies } from './app.js';
import type { MirrorConfig } from './config/mirror-config.js';
import { LocalFlights, type Flights } from './coordination/flights.js';
import type { Digest } from './domain/digest.js';
import { CacheBudget, type ReconcileMode } from './eviction/cache-budget.js';
import { pullableBy, type AccessPolicy as AccessRules } from './hosted/access-rules.js';
import { createHostedServices, type HostedServices } from './hosted/hosted-services.js';
import { FILE_STORE_PIECES, OBJECT_STORE_PIECES, type PieceSize } from './hosted/upload-body.js';
import { RepositoryPatterns } from './hosted/repository-patterns.js';
import { Htpasswd } from './http/htpasswd.js';
import type { RequestLane } from './http/warm-blob-lane.js';
import type { MetadataStore } from './metadata/metadata-store.js';
import { openMetadataStore, type OpenMetadataOptions } from './metadata/open-metadata-store.js';
import { UsageRecorder } from './metrics/usage-recorder.js';
import { Observability } from './observability.js';
import { AccessPolicy, type AnonymousProbe } from './pull-through/access-policy.js';
import { BlobDownloads } from './pull-through/blob-downloads.js';
import { GuardedRegistry } from './pull-through/guarded-registry.js';
import { ContentGrants } from './pull-through/content-grants.js';
import { GrantedRegistry } from './pull-through/granted-registry.js';
import type { RegistryService } from './pull-through/registry-service.js';
import { ManifestPrefetch, prefetchWindow } from './pull-through/manifest-prefetch.js';
import { ManifestResolver } from './pull-through/manifest-resolver.js';
import { ProxyBlobs } from './pull-through/proxy-blobs.js';
import { ProxyRegistry } from './pull-through/proxy-registry.js';
import type { UpstreamConcurrency } from './pull-through/upstream-limiter.js';
import { Upstreams } from './pull-through/upstreams.js';
import type { ContentStore } from './storage/content-store.js';
import type { S3ContentStore } from './storage/s3/s3-content-store.js';
import type { LocalTier } from './tiering/local-tier.js';
import { openContentStore } from './tiering/open-content-store.js';
import { ManifestStore } from './storage/manifest-store.js';
import { openFleet, type Fleet } from './replicas/fleet.js';
import type { WorkerIdentity } from './replicas/worker-coordination.js';
import { ResilientMetadataStore } from './replicas/resilient-metadata.js';
import { openSharedRateLimits } from './replicas/shared-rate-limits.js';
import { upgradeCache } from './upgrade-cache.js';
import { UpstreamRegistry, type UpstreamResponseInfo } from './upstream/upstream-registry.js';
import { UpstreamRouter } from './upstream/upstream-router.js';

export interface Mirror {
  app: Hono;
  /** Answers warm blob GETs in front of the app (http/warm-blob-lane.ts); none with client authentication. */
  lane: RequestLane | undefined;
  /** The pull-through service, unguarded: what the tools (warm) use with the mirror's own credentials. */
  registry: ProxyRegistry;
  downloads: BlobDownloads;
  budget: CacheBudget;
  limiter: UpstreamConcurrency;
  content: ContentStore;
  manifests: ManifestStore;
  metadata: MetadataStore;
  router: UpstreamRouter;
  /** Hosted repositories: pushes, deletions, garbage collection (hosted/hosted-services.ts). */
  hosted: HostedServices;
  /** Metrics, rate limits, readiness and the status report. */
  observability: Observability;
  /** /readyz answers 503 from now on (the serve command calls it on SIGTERM). */
  markShuttingDown(): void;
  /**
   * Asks each upstream how it wants to be authenticated (`GET /v2/`) before the first miss needs
   * it (upstream-registry.ts learnChallenge); a server calls it once it starts, unless offline.
   * Resolves with the names of the upstreams that asked for authentication.
   */
  learnUpstreamChallenges(): Promise<string[]>;
  close(): Promise<void>;
}

export interface ComposeOptions {
  /**
   * When to bring the blob index in line with the content store: in the background (a server,
   * the default), before returning, or not at all (one-shot tools beside a server).
   */
  reconcile?: ReconcileMode;
  /**
   * Prefetch an image's blobs when its manifest is fetched (config `fetch.prefetch`). Tools that
   * fetch whole images on their own schedule (warm) turn it off; default: the config's.
   */
  prefetch?: boolean;
  /** In a worker of `serve --workers N`: how the other workers reach this one (replicas/worker-coordination.ts). */
  worker?: WorkerIdentity;
  /** Periodic garbage collection and upload expiry; default: unless `reconcile` is 'skip' (one-shot tools). */
  housekeeping?: boolean;
  /**
   * metadata.store "redis" unreachable at start: fail (the default: one-shot tools), or start
   * degraded and reconnect (`serve`: a replica restarted during an outage still serves).
   */
  whenRedisUnreachable?: OpenMetadataOptions['whenRedisUnreachable'];
}

export interface Stores {
  content: ContentStore;
  metadata: MetadataStore;
  manifests: ManifestStore;
  /** With storage.driver "s3": the local copy of hot blobs (bounded by cache.maxBytes) and the bucket. */
  localTier?: LocalTier;
  bucket?: S3ContentStore;
  /** How upload bodies are best written to this content store (hosted/upload-body.ts). */
  writePieces: PieceSize;
  close(): Promise<void>;
}

/** The content and metadata stores the config names, a cache of an earlier release upgraded. */
export async function openStores(config: MirrorConfig, log: Logger, options: OpenMetadataOptions = {}): Promise<Stores> {
  const { content, localTier, bucket } = await openContentStore(config, log);
  const opened = await openMetadataStore(config, options).catch(async (error: unknown) => {
    await content.close();
    throw error;
  });
  // Replicas keep serving what their disk and S3 hold while Redis is away (replicas/resilient-metadata.ts).
  const metadata = config.metadata.store === 'redis' ? new ResilientMetadataStore(opened, log) : opened;
  if (metadata instanceof ResilientMetadataStore) await metadata.checkReachable();
  const manifests = new ManifestStore(content, metadata.manifests);
  const close = async () => {
    await content.close();
    await metadata.close();
  };
  await upgradeCache(config.cache.dir, manifests, metadata, log).catch(async (error: unknown) => {
    await close();
    throw error;
  });
  return { content, metadata, manifests, localTier, bucket, writePieces: bucket ? OBJECT_STORE_PIECES : FILE_STORE_PIECES, close };
}

export async function composeMirror(config: MirrorConfig, log: Logger, options: ComposeOptions = {}): Promise<Mirror> {
  const observability = new Observability(config, log);
  const stores = await openStores(config, log, { whenRedisUnreachable: options.whenRedisUnreachable });
  watchBackends(config, stores, observability);
  // Replicas share upstream rate-limit state (a 429 one of them got) through their Redis.
  const sharedRateLimits = config.metadata.redisUrl && config.metadata.store === 'redis' ? await openSharedRateLimits(config.metadata.redisUrl) : undefined;
  if (sharedRateLimits) observability.rateLimits.shareWith(sharedRateLimits);
  const budget = createBudget(config, stores, observability, log);
  // The bucket's index is kept by the writers of every replica; listing a whole bucket at each start would not scale.
  await budget.start(stores.bucket ? 'skip' : options.reconcile ?? 'background');
  const fleet = await openFleet(config, log, { worker: options.worker });
  const pull = createPullThrough(config, stores, budget, observability, fleet, log, options.prefetch ?? config.fetch.prefetch);
  const clientCredentials = config.auth ? await Htpasswd.load(config.auth.htpasswd) : undefined;
  // With client auth every API client is authenticated; without it, private content needs guarding.
  const policy = clientCredentials ? undefined : createAccessPolicy(config, pull, stores, budget);
  const guarded = policy && new GuardedRegistry(pull.registry, policy);
  const recorder = new UsageRecorder(stores.metadata.usage);
  const router = createRouter(config);
  const credentialedUpstreams = new Set(Object.keys(config.upstreams).filter((name) => config.upstreams[name]?.username !== undefined));
  const hosted = createHostedServices({ config, stores: { ...stores, budget }, uploadPieces: stores.writePieces, router, credentialedUpstreams, log, ...(guarded ? { guarded } : {}) });
  const granted = createGrantedRegistries(hosted.access, pull, stores);
  if (options.housekeeping ?? options.reconcile !== 'skip') hosted.maintenance.start();
  observability.watch({ budget: stores.localTier?.budget ?? budget, limiter: pull.limiter, downloads: pull.downloads, recorder });
  const appDependencies: AppDependencies = {
    registry: pull.registry, guarded, granted, router, log, observability: observability.http, clientCredentials, accelRedirectPrefix: config.accel?.redirectPrefix, sendfile: config.sendfile,
    sendTimeoutMs: config.listen.sendTimeoutSeconds * 1000,
    hosted: { services: hosted, trustForwardedHeaders: config.hosted.trustForwardedHeaders }, internalRoutes: pull.fleet.mountRoutes,
  };
  const app = createApp(appDependencies);
  return {
    app, lane: createWarmBlobLane(appDependencies), registry: pull.registry, downloads: pull.downloads, budget, limiter: pull.limiter, router, hosted, observability,
    content: stores.content, manifests: stores.manifests, metadata: stores.metadata,
    markShuttingDown: () => observability.markShuttingDown(),
    async learnUpstreamChallenges() {
      const learned = await Promise.all([...pull.clients].map(async ([name, client]) => ((await client.learnChallenge()) ? [name] : [])));
      return learned.flat();
    },
    async close() {
      await pull.downloads.finishCommits();
      await Promise.all([...pull.clients.values()].map((client) => client.close()));
      await pull.fleet.close();
      await sharedRateLimits?.close();
      await recorder.close();
      await hosted.close();
      await clientCredentials?.close();
      await budget.close();
      await stores.close();
      observability.readiness.close();
    },
  };
}

/**
 * /readyz: a local metadata store must answer; a replica's Redis and bucket are reported (not
 * required): replicas keep serving while one is down.
 */
function watchBackends(config: MirrorConfig, stores: Stores, observability: Observability): void {
  observability.readiness.watchMetadata(stores.metadata, config.metadata.store);
  const bucket = stores.bucket;
  if (bucket) observability.readiness.addDependency('objectStore', () => bucket.ping());
}

/** Which repository a name is: hosted (hosted.repositories, defaultUpstream null) or proxied from which upstream. */
export function createRouter(config: MirrorConfig): UpstreamRouter {
  return new UpstreamRouter(Object.keys(config.upstreams), config.defaultUpstream, RepositoryPatterns.parse(config.hosted.repositories, 'hosted.repositories'));
}

function createBudget(config: MirrorConfig, { content, metadata }: Stores, observability: Observability, log: Logger): CacheBudget {
  return new CacheBudget({
    content, metadata, maxBytes: sharedBudgetBytes(config),
    onEvict: (digest, size) => {
      observability.onEvict(digest, size);
      log.info({ digest, size }, 'evicted blob');
    },
    onError: (error) => log.warn({ err: error }, 'cache housekeeping failed'),
  });
}

/**
 * On the local disk, cache.maxBytes bounds the blobs. With S3 it bounds the local tier
 * (tiering/local-tier.ts), and the bucket is not evicted by the mirror: the shared index then only
 * records what the bucket holds (`prune` still shrinks it on request).
 */
function sharedBudgetBytes(config: MirrorConfig): number {
  return config.storage.driver === 's3' ? Number.MAX_SAFE_INTEGER : config.cache.maxBytes;
}

interface PullThrough {
  registry: ProxyRegistry;
  downloads: BlobDownloads;
  limiter: UpstreamConcurrency;
  fleet: Fleet;
  flights: Flights;
  clients: Map<string, UpstreamRegistry>;
  upstreams: Upstreams;
  requestDeadlineMs: number;
}

/** The pull-through registry service over the stores, flights and upstream clients. */
/**
 * `fleet`: flights, the upstream bound and blob downloads per process, across replicas or across
 * workers. `prefetching`: config `fetch.prefetch` unless the caller (a tool) decided otherwise.
 */
function createPullThrough(
  config: MirrorConfig, { content, metadata, manifests, localTier }: Stores, budget: CacheBudget, observability: Observability, fleet: Fleet, log: Logger, prefetching: boolean,
): PullThrough {
  const { flights, limiter } = fleet;
  const clients = createUpstreams(config, observability.onUpstreamResponse, log);
  const upstreams = new Upstreams(observability.guardUpstreams(new Map(clients)), config.offline);
  const deadlines = flightDeadlines(config);
  // A download streamed from another replica lands on this one's disk only; its owner links it.
  const peerStores = localTier ? { content: localTier.content, budget: localTier.budget, links: NO_LINKS } : { content, budget, links: NO_LINKS };
  const downloads = fleet.downloads({
    flights: new LocalFlights(), limiter, content, budget, links: metadata.links, fillTimeoutMs: deadlines.fillMs, stalledFillMs: config.fetch.abandonStalledSeconds * 1000,
    onDiskFull: (freedBytes) => log.warn({ freedBytes }, 'disk full (ENOSPC) during a blob fill: evicted cached blobs to make room'),
  }, peerStores);
  const resolver = new ManifestResolver({
    manifests, tags: metadata.tags, links: metadata.links, upstreams, flights, deadlineMs: deadlines.requestMs,
    ttlMs: config.tags.ttlSeconds * 1000,
    staleIfErrorMs: config.tags.staleIfErrorSeconds === null ? null : config.tags.staleIfErrorSeconds * 1000,
    onStale: (target, tag, error) => log.warn({ upstream: target.upstream, repository: target.repository, tag, err: error }, 'serving stale tag: upstream failed'),
  });
  const blobs = new ProxyBlobs({ content, budget, downloads, upstreams });
  const prefetch = prefetching
    ? new ManifestPrefetch({ downloads, budget, upstreams, window: prefetchWindow(config.fetch.maxConcurrent), onOutcome: (outcome) => observability.metrics.prefetch(outcome) })
    : undefined;
  const registry = new ProxyRegistry({ manifests: resolver, blobs, tags: metadata.tags, upstreams, flights, deadlineMs: deadlines.requestMs, prefetch });
  return { registry, downloads, limiter, fleet, flights, clients, upstreams, requestDeadlineMs: deadlines.requestMs };
}

const NO_LINKS = { add: async () => {}, remove: async () => {} };

/** Fills get `fetch.fillTimeoutSeconds`; a shared small request (manifest, tag list, probe) its timeouts several times over. */
function flightDeadlines(config: MirrorConfig): { fillMs: number; requestMs: number } {
  const { connectTimeoutSeconds, headersTimeoutSeconds, idleTimeoutSeconds, fillTimeoutSeconds } = config.fetch;
  return { fillMs: fillTimeoutSeconds * 1000, requestMs: 4 * (connectTimeoutSeconds + headersTimeoutSeconds + idleTimeoutSeconds) * 1000 };
}

function createUpstreams(config: MirrorConfig, onResponse: ((info: UpstreamResponseInfo) => void) | undefined, log: Logger): Map<string, UpstreamRegistry> {
  const timeouts = {
    connectMs: config.fetch.connectTimeoutSeconds * 1000,
    headersMs: config.fetch.headersTimeoutSeconds * 1000,
    idleMs: config.fetch.idleTimeoutSeconds * 1000,
  };
  return new Map(Object.entries(config.upstreams).map(([name, upstream]) => [name, new UpstreamRegistry({ name, config: upstream, timeouts, onResponse, log })]));
}

/**
 * Under access rules, content by digest under a proxied name is checked against what the user
 * may pull (pull-through/content-grants.ts); without rules every authenticated user may pull
 * everything, so there is nothing to keep from anyone. Offline, no upstream can confirm a digest.
 */
function createGrantedRegistries(access: AccessRules, pull: PullThrough, { metadata, content }: Stores): ((user: string) => RegistryService) | undefined {
  const pullable = pullableBy(access);
  if (!pullable) return undefined;
  const grants = new ContentGrants({
    links: metadata.links, flights: pull.flights, deadlineMs: pull.requestDeadlineMs,
    indexed: (digest) => metadata.blobs.get(digest),
    held: async (digest) => (await content.stat(digest)) !== undefined,
    isManifestRecorded: async (digest) => (await metadata.manifests.get(digest)) !== undefined,
    fillingThrough: (digest) => pull.downloads.running(digest)?.via,
    mayPull: (user, key) => pullable(user)(key),
    probe: async (target, object) => (pull.upstreams.offline ? 'missing' : pull.clients.get(target.upstream)?.probe(target.repository, object) ?? 'missing'),
  });
  return (user) => new GrantedRegistry(pull.registry, grants, user);
}

/**
 * Only upstreams the mirror has credentials for can hold content anonymous clients must not get;
 * with one such upstream, content by digest is checked under every upstream (access-policy.ts),
 * since the cache holds it once whichever upstream it came through. Offline, no credentials are
 * ever used: what is cached was put there by the operator (warm, import), and there is no
 * upstream to ask, so no policy applies.
 */
function createAccessPolicy(config: MirrorConfig, pull: PullThrough, { metadata, manifests }: Stores, budget: CacheBudget): AccessPolicy | undefined {
  if (pull.upstreams.offline) return undefined;
  const guarded = new Set(Object.keys(config.upstreams).filter((name) => config.upstreams[name]?.username !== undefined));
  if (guarded.size === 0) return undefined;
  const probes = new Map<string, AnonymousProbe>(pull.clients);
  const downloadingElsewhere = (digest: Digest, via: string) => {
    const running = pull.downloads.running(digest);
    return running !== undefined && running.via !== via;
  };
  const isLocal = async (kind: 'blob' | 'manifest', digest: Digest, via: string): Promise<boolean> => kind === 'blob'
    ? (await budget.lookup(digest.value)) !== undefined || downloadingElsewhere(digest, via)
    : (await manifests.read(digest)) !== undefined;
  const fillingThrough = (kind: 'blob' | 'manifest', digest: Digest, via: string) => kind === 'blob' && pull.downloads.running(digest)?.via === via;
  return new AccessPolicy({
    probes, guarded, verdicts: metadata.verdicts, links: metadata.links, flights: pull.flights, deadlineMs: pull.requestDeadlineMs, isLocal, fillingThrough, maxVerdicts: config.metadata.maxVerdicts,
  });
}
