/**
 * The pull-through blob service (ProxyBlobs) over an in-memory store and metadata, with the fake
 * registry on a real socket as its only upstream (`docker.io`): for tests of the service without
 * a mirror around it. Register with `useProxyBlobsOverFake()` in a describe block; what `start`
 * opens is closed after each test.
 */
import { afterEach } from 'vitest';
import { LocalFlights } from '../../src/coordination/flights.js';
import { CacheBudget } from '../../src/eviction/cache-budget.js';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import { BlobDownloads } from '../../src/pull-through/blob-downloads.js';
import { ProxyBlobs } from '../../src/pull-through/proxy-blobs.js';
import { UpstreamLimiter } from '../../src/pull-through/upstream-limiter.js';
import { Upstreams } from '../../src/pull-through/upstreams.js';
import { MemoryContentStore } from '../../src/storage/memory/memory-content-store.js';
import { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from './fake-registry.js';

export interface ProxyBlobsOverFake {
  fake: FakeRegistry;
  upstream: UpstreamRegistry;
  content: MemoryContentStore;
  metadata: MemoryMetadataStore;
  budget: CacheBudget;
  downloads: BlobDownloads;
  blobs: ProxyBlobs;
}

export interface ProxyBlobsOverFakeOptions {
  fake?: FakeRegistryOptions;
  /** The mirror's upstream credentials; the fake's token realm is trusted with them. */
  credentials?: { username: string; password: string };
}

export function useProxyBlobsOverFake(): (options?: ProxyBlobsOverFakeOptions) => Promise<ProxyBlobsOverFake> {
  const opened: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const resource of opened.splice(0).reverse()) await resource.close();
  });
  return async (options = {}) => {
    const fake = await startFakeRegistry(options.fake);
    opened.push(fake);
    const realms = options.credentials ? { ...options.credentials, tokenRealms: [new URL(fake.tokenUrl).host] } : { tokenRealms: [] };
    const upstream = new UpstreamRegistry({ name: 'docker.io', config: { url: fake.url, ...realms }, timeouts: { connectMs: 5_000, headersMs: 5_000, idleMs: 5_000 } });
    opened.push(upstream);
    const content = new MemoryContentStore();
    const metadata = new MemoryMetadataStore();
    const budget = new CacheBudget({ content, metadata, maxBytes: 10 * 1024 * 1024 });
    const downloads = new BlobDownloads({ flights: new LocalFlights(), limiter: new UpstreamLimiter(4), content, budget, links: metadata.links, fillTimeoutMs: 10_000 });
    const blobs = new ProxyBlobs({ content, budget, downloads, upstreams: new Upstreams(new Map([['docker.io', upstream]]), false) });
    return { fake, upstream, content, metadata, budget, downloads, blobs };
  };
}
