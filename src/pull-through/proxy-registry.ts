/**
 * The pull-through registry service (registry-service.ts) for proxied repositories: manifests
 * (manifest-resolver.ts), blobs (proxy-blobs.ts), tag lists and referrers, each answered from
 * the stores where possible and from the right upstream otherwise. Compare distribution's
 * registry/proxy, which wraps the local store behind the same read interface.
 */
import type { Flights } from '../coordination/flights.js';
import type { RangeRequest } from '../domain/byte-range.js';
import type { Digest } from '../domain/digest.js';
import { isUpstreamOutage, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import { OCI_INDEX } from '../domain/media-types.js';
import type { ManifestReference } from '../domain/reference.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import type { PageRequest, TagStore } from '../metadata/metadata-store.js';
import type { ManifestPrefetch } from './manifest-prefetch.js';
import type { ManifestResolver } from './manifest-resolver.js';
import type { ProxyBlobs } from './proxy-blobs.js';
import type { BlobAnswer, BlobRequestOptions, ManifestAnswer, ManifestRequestOptions, ReferrersAnswer, RegistryService, RequestOptions, TagList } from './registry-service.js';
import type { Upstreams } from './upstreams.js';

export interface ProxyRegistryOptions {
  manifests: ManifestResolver;
  blobs: ProxyBlobs;
  tags: Pick<TagStore, 'list'>;
  upstreams: Upstreams;
  flights: Flights;
  /** Deadline of one shared tag-list or referrers request. */
  deadlineMs: number;
  /** Config `fetch.prefetch`: an image manifest fetched for a client starts fetching its blobs. */
  prefetch?: ManifestPrefetch;
}

export class ProxyRegistry implements RegistryService {
  constructor(private readonly options: ProxyRegistryOptions) {}

  async manifest(target: ProxiedTarget, reference: ManifestReference, accept: string[], options: ManifestRequestOptions = {}): Promise<ManifestAnswer> {
    const answer = await this.options.manifests.resolve(target, reference, accept, options.chargeTo);
    // Through the repository this client reads, once it is known to be allowed to.
    void Promise.resolve(options.prefetchOnceAllowed).then(() => this.options.prefetch?.afterManifest(target, answer), () => {});
    return answer;
  }

  blobSize(target: ProxiedTarget, digest: Digest, options?: RequestOptions): Promise<number> {
    return this.options.blobs.size(target, digest, options);
  }

  blob(target: ProxiedTarget, digest: Digest, range?: RangeRequest, options?: BlobRequestOptions): Promise<BlobAnswer> {
    return this.options.blobs.blob(target, digest, range, options);
  }

  blobHeldInMemory(target: ProxiedTarget, digest: Digest): boolean {
    return this.options.blobs.heldInMemory(digest);
  }

  /** The upstream's tag list; the tags this mirror knows when the upstream fails or there is none. */
  async tagList(target: ProxiedTarget, page: PageRequest, options: RequestOptions = {}): Promise<TagList> {
    const upstream = this.options.upstreams.for(target, options.chargeTo);
    let failure: unknown;
    if (upstream) {
      const query = new URLSearchParams();
      if (page.n !== undefined) query.set('n', String(page.n));
      if (page.last !== undefined) query.set('last', page.last);
      try {
        const list = await this.#shared(`tags ${repositoryKey(target)}?${query}`, (signal) => upstream.fetchTags(target.repository, query.toString(), { signal }));
        return { ...list, fromCache: false };
      } catch (error) {
        if (!isUpstreamOutage(error)) throw error;
        failure = error;
      }
    }
    const tags = await this.options.tags.list(repositoryKey(target), page);
    if (tags.length === 0 && (await this.options.tags.list(repositoryKey(target), { n: 1 })).length === 0) {
      // Knowing none, the upstream's failure is the answer (502/503): a 404 would tell clients the repository does not exist.
      throw failure ?? new NameUnknownError(`repository ${target.repository} is not known to this mirror`);
    }
    return { body: Buffer.from(JSON.stringify({ name: target.repository, tags })), link: undefined, fromCache: true };
  }

  /**
   * Referrers (distribution-spec v1.1 "Listing Referrers"): the upstream's referrers API where
   * it has one, else the tag-schema fallback `sha256-<hex>` index, else an empty index.
   */
  async referrers(target: ProxiedTarget, digest: Digest, artifactType: string | undefined, _page?: PageRequest, options: RequestOptions = {}): Promise<ReferrersAnswer> {
    const upstream = this.options.upstreams.for(target, options.chargeTo);
    if (upstream) {
      const key = `referrers ${repositoryKey(target)}@${digest.value}?${artifactType ?? ''}`;
      const listed = await this.#shared(key, (signal) => upstream.fetchReferrers(target.repository, digest.value, artifactType, { signal }));
      if (listed) return { body: listed.body, filtered: artifactType !== undefined };
    }
    return filterReferrers(await this.#fallbackReferrers(target, digest, options), artifactType);
  }

  async #fallbackReferrers(target: ProxiedTarget, digest: Digest, options: RequestOptions): Promise<unknown[]> {
    const tag = `${digest.algorithm}-${digest.hex}`;
    try {
      const index = await this.options.manifests.resolve(target, { kind: 'tag', tag }, [], options.chargeTo);
      const manifests = (JSON.parse(index.bytes.toString('utf8')) as { manifests?: unknown }).manifests;
      return Array.isArray(manifests) ? manifests : [];
    } catch (error) {
      if (error instanceof ManifestUnknownError) return [];
      throw error;
    }
  }

  #shared<T>(key: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.options.flights.run(key, work, { deadlineMs: this.options.deadlineMs });
  }
}

function filterReferrers(descriptors: unknown[], artifactType: string | undefined): ReferrersAnswer {
  const manifests = artifactType === undefined
    ? descriptors
    : descriptors.filter((descriptor) => (descriptor as { artifactType?: unknown }).artifactType === artifactType);
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  return { body: Buffer.from(JSON.stringify(index)), filtered: artifactType !== undefined };
}
