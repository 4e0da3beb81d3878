/**
 * The one function that knows every module: builds the store, metadata, upstream clients,
 * pull-through service and HTTP app from a validated config.
 */
import type { Hono } from 'hono';
import type Keyv from 'keyv';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { MirrorConfig } from './config/mirror-config.js';
import { BlobLru } from './eviction/blob-lru.js';
import { createKeyv } from './metadata/create-keyv.js';
import { TagIndex, unionTagLists, type TagRecord } from './metadata/tag-index.js';
import { UsageStats, type UsageRecord } from './metadata/usage-stats.js';
import { Observability } from './observability.js';
import { Htpasswd } from './http/htpasswd.js';
import { AccessPolicy, type AccessRecords, type AnonymousProbe, type Verdict } from './pull-through/access-policy.js';
import { BlobPuller } from './pull-through/blob-puller.js';
import { ManifestResolver } from './pull-through/manifest-resolver.js';
import { Puller } from './pull-through/puller.js';
import { UpstreamLimiter } from './pull-through/upstream-limiter.js';
import type { UpstreamPort } from './pull-through/upstream-port.js';
import { BlobStore } from './store/blob-store.js';
import { ContentSources } from './store/content-sources.js';
import { ManifestStore } from './store/manifest-store.js';
import { StorePaths } from './store/store-paths.js';
import { UpstreamRegistry, type UpstreamResponseInfo } from './upstream/upstream-registry.js';
import { UpstreamRouter } from './upstream/upstream-router.js';

export interface Mirror {
  app: Hono;
  puller: Puller;
  blobs: BlobPuller;
  lru: BlobLru;
  limiter: UpstreamLimiter;
  /** The pieces the offline tools (export, import) work on directly. */
  tags: TagIndex;
  blobStore: BlobStore;
  manifestStore: ManifestStore;
  router: UpstreamRouter;
  /** Metrics, rate limits, readiness and the status report. */
  observability: Observability;
  /** /readyz answers 503 from now on (the serve command calls it on SIGTERM). */
  markShuttingDown(): void;
  close(): Promise<void>;
}

export interface ComposeOptions {
  /**
   * Another process may be using the cache (a command beside a running server): leave tmp/
   * alone, since its files may be that server's downloads in progress.
   */
  sharedCache?: boolean;
}

export async function composeMirror(config: MirrorConfig, log: Logger, options: ComposeOptions = {}): Promise<Mirror> {
  const observability = new Observability(config, log);
  const paths = new StorePaths(config.cache.dir);
  const blobStore = new BlobStore(paths);
  await blobStore.init({ clearTemp: !options.sharedCache });
  const lru = new BlobLru(blobStore, config.cache.maxBytes, {
    onEvict: (digest, size) => {
      observability.onEvict(digest, size);
      log.info({ digest, size }, 'evicted blob');
    },
  });
  await lru.rebuild();

  const tagKeyv = await createKeyv<TagRecord>(config, 'tags');
  // Several processes (serve, warm, import) may add tags to one list; their saves take the union.
  const repositoryKeyv = await createKeyv<string[]>(config, 'repositories', { merge: unionTagLists });
  const usageKeyv = await createKeyv<UsageRecord>(config, 'usage');
  const usage = new UsageStats(usageKeyv);
  const tags = new TagIndex(tagKeyv, repositoryKeyv);
  const upstreamClients = createUpstreams(config, observability.onUpstreamResponse);
  const upstreams = observability.guardUpstreams(new Map<string, UpstreamPort>(upstreamClients));
  const limiter = new UpstreamLimiter(config.fetch.maxConcurrent);
  const manifestStore = new ManifestStore(paths);
  const clientCredentials = config.auth ? await Htpasswd.load(config.auth.htpasswd) : undefined;
  // With client auth every API client is authenticated; without it, private content needs guarding.
  const verdictKeyv = await createKeyv<Verdict>(config, 'access');
  const records = accessRecords(verdictKeyv, new ContentSources(paths));
  const accessPolicy: AccessPolicy | undefined = clientCredentials ? undefined : createAccessPolicy(config, upstreamClients, records, async (kind, digest): Promise<boolean> =>
    kind === 'blob'
      ? (await blobStore.size(digest)) !== undefined || blobs.downloads().some((download) => download.digest === digest.value)
      : (await manifestStore.read(digest)) !== undefined);
  const blobs: BlobPuller = new BlobPuller({
    store: blobStore, lru, limiter, upstreams, offline: config.offline, fillTimeoutMs: config.fetch.fillTimeoutSeconds * 1000,
    onUpstreamFetch: accessPolicy && ((target, digest) => accessPolicy.recordSource(target, digest)),
    onDiskFull: (freedBytes) => log.warn({ freedBytes }, 'disk full (ENOSPC) during a blob fill: evicted cached blobs to make room'),
  });
  const manifests = new ManifestResolver({
    manifests: manifestStore,
    tags,
    upstreams,
    offline: config.offline,
    ttlMs: config.tags.ttlSeconds * 1000,
    staleIfErrorMs: config.tags.staleIfErrorSeconds === null ? null : config.tags.staleIfErrorSeconds * 1000,
    onStale: (target, tag, error) => log.warn({ upstream: target.upstream, repository: target.repository, tag, err: error }, 'serving stale tag: upstream failed'),
    onUpstreamFetch: accessPolicy && ((target, digest) => accessPolicy.recordSource(target, digest)),
  });
  const puller = new Puller({ manifests, blobs, tags, upstreams, offline: config.offline, usage });
  const router = new UpstreamRouter(Object.keys(config.upstreams), config.defaultUpstream);
  observability.watch({ lru, limiter, blobs });
  const app = createApp({ puller, router, log, observability: observability.http, clientCredentials, accessPolicy, accelRedirectPrefix: config.accel?.redirectPrefix, sendfile: config.sendfile });

  return {
    app, puller, blobs, lru, limiter, tags, blobStore, manifestStore, router, observability,
    markShuttingDown: () => observability.markShuttingDown(),
    async close() {
      await Promise.all([...upstreamClients.values()].map((client) => client.close()));
      await usage.close();
      await clientCredentials?.close();
      // disconnect() also writes what the file store still holds in memory (json-file-store.ts).
      await Promise.all([tagKeyv.disconnect(), repositoryKeyv.disconnect(), usageKeyv.disconnect(), verdictKeyv.disconnect()]);
    },
  };
}

function createUpstreams(config: MirrorConfig, onResponse?: (info: UpstreamResponseInfo) => void): Map<string, UpstreamRegistry> {
  const timeouts = {
    connectMs: config.fetch.connectTimeoutSeconds * 1000,
    headersMs: config.fetch.headersTimeoutSeconds * 1000,
    idleMs: config.fetch.idleTimeoutSeconds * 1000,
  };
  return new Map(Object.entries(config.upstreams).map(([name, upstream]) => [name, new UpstreamRegistry({ name, config: upstream, timeouts, onResponse })]));
}

/**
 * Only upstreams the mirror has credentials for can hold content anonymous clients must not get.
 * Offline, no credentials are ever used: what is cached was put there by the operator (warm,
 * import), and there is no upstream to ask, so no policy applies.
 */
function createAccessPolicy(config: MirrorConfig, clients: Map<string, UpstreamRegistry>, records: AccessRecords, isLocal: ConstructorParameters<typeof AccessPolicy>[0]['isLocal']): AccessPolicy | undefined {
  if (config.offline) return undefined;
  const probes = new Map<string, AnonymousProbe>([...clients].filter(([name]) => config.upstreams[name]?.username !== undefined));
  return probes.size === 0 ? undefined : new AccessPolicy({ probes, isLocal, offline: config.offline, records });
}

/** Verdicts in the metadata store (few, per repository); sources beside the content (many). */
function accessRecords(verdicts: Keyv<Verdict>, sources: ContentSources): AccessRecords {
  return {
    verdict: async (repository) => (await verdicts.get(repository)) ?? undefined,
    saveVerdict: async (repository, verdict) => void (await verdicts.set(repository, verdict)),
    sources: (digest) => sources.read(digest),
    saveSources: (digest, repositories) => sources.write(digest, repositories),
  };
}
