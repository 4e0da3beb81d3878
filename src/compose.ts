/**
 * The one function that knows every module: builds the store, metadata, upstream clients,
 * pull-through service and HTTP app from a validated config.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import { createApp } from './app.js';
import type { MirrorConfig } from './config/mirror-config.js';
import { BlobLru } from './eviction/blob-lru.js';
import { createKeyv } from './metadata/create-keyv.js';
import { TagIndex, type TagRecord } from './metadata/tag-index.js';
import { BlobPuller } from './pull-through/blob-puller.js';
import { ManifestResolver } from './pull-through/manifest-resolver.js';
import { Puller } from './pull-through/puller.js';
import { UpstreamLimiter } from './pull-through/upstream-limiter.js';
import type { UpstreamPort } from './pull-through/upstream-port.js';
import { BlobStore } from './store/blob-store.js';
import { ManifestStore } from './store/manifest-store.js';
import { StorePaths } from './store/store-paths.js';
import { UpstreamRegistry } from './upstream/upstream-registry.js';
import { UpstreamRouter } from './upstream/upstream-router.js';

export interface Mirror {
  app: Hono;
  puller: Puller;
  blobs: BlobPuller;
  lru: BlobLru;
  limiter: UpstreamLimiter;
  close(): Promise<void>;
}

export async function composeMirror(config: MirrorConfig, log: Logger): Promise<Mirror> {
  const paths = new StorePaths(config.cache.dir);
  const blobStore = new BlobStore(paths);
  await blobStore.init();
  const lru = new BlobLru(blobStore, config.cache.maxBytes, {
    onEvict: (digest, size) => log.info({ digest, size }, 'evicted blob'),
  });
  await lru.rebuild();

  const tagKeyv = createKeyv<TagRecord>(config, 'tags');
  const repositoryKeyv = createKeyv<string[]>(config, 'repositories');
  const tags = new TagIndex(tagKeyv, repositoryKeyv);
  const upstreamClients = createUpstreams(config);
  const upstreams = new Map<string, UpstreamPort>(upstreamClients);
  const limiter = new UpstreamLimiter(config.fetch.maxConcurrent);
  const blobs = new BlobPuller({
    store: blobStore, lru, limiter, upstreams, offline: config.offline, fillTimeoutMs: config.fetch.fillTimeoutSeconds * 1000,
  });
  const manifests = new ManifestResolver({
    manifests: new ManifestStore(paths),
    tags,
    upstreams,
    offline: config.offline,
    ttlMs: config.tags.ttlSeconds * 1000,
    staleIfErrorMs: config.tags.staleIfErrorSeconds === null ? null : config.tags.staleIfErrorSeconds * 1000,
    onStale: (target, tag, error) => log.warn({ upstream: target.upstream, repository: target.repository, tag, err: error }, 'serving stale tag: upstream failed'),
  });
  const puller = new Puller({ manifests, blobs, tags, upstreams, offline: config.offline });
  const router = new UpstreamRouter(Object.keys(config.upstreams), config.defaultUpstream);
  const app = createApp({ puller, router, log });

  return {
    app, puller, blobs, lru, limiter,
    async close() {
      await Promise.all([...upstreamClients.values()].map((client) => client.close()));
      await Promise.all([tagKeyv.disconnect(), repositoryKeyv.disconnect()]);
    },
  };
}

function createUpstreams(config: MirrorConfig): Map<string, UpstreamRegistry> {
  const timeouts = {
    connectMs: config.fetch.connectTimeoutSeconds * 1000,
    headersMs: config.fetch.headersTimeoutSeconds * 1000,
    idleMs: config.fetch.idleTimeoutSeconds * 1000,
  };
  return new Map(Object.entries(config.upstreams).map(([name, upstream]) => [name, new UpstreamRegistry({ name, config: upstream, timeouts })]));
}
