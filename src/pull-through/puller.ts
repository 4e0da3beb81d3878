/**
 * The pull-through service the HTTP routes call: manifests, blobs, tag lists and referrers,
 * each answered from the cache where possible and from the right upstream otherwise. Routes
 * never learn whether bytes were local (compare distribution's registry/proxy, which wraps the
 * local store behind the same read interface).
 */
import type { Digest } from '../domain/digest.js';
import { isUpstreamOutage, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import { OCI_INDEX } from '../domain/media-types.js';
import type { ManifestReference } from '../domain/reference.js';
import type { TagIndex } from '../metadata/tag-index.js';
import type { UsageRecorder } from '../metadata/usage-stats.js';
import type { RepositoryTarget } from '../upstream/upstream-router.js';
import type { BlobAnswer, BlobPuller } from './blob-puller.js';
import type { ManifestAnswer, ManifestResolver } from './manifest-resolver.js';
import { SharedFlights } from './shared-flight.js';
import type { UpstreamPort } from './upstream-port.js';

export interface TagList {
  body: Buffer;
  link: string | undefined;
  /** True when the upstream failed and the list comes from the tags this mirror knows. */
  fromCache: boolean;
}

export interface ReferrersAnswer {
  body: Buffer;
  /** Set when the artifactType filter was applied (OCI-Filters-Applied header). */
  filtered: boolean;
}

export interface PullerOptions {
  manifests: ManifestResolver;
  blobs: BlobPuller;
  tags: TagIndex;
  upstreams: Map<string, UpstreamPort>;
  offline: boolean;
  /** Persistent per-repository pulls, hits and misses (`registry-mirror stats`). */
  usage?: UsageRecorder;
}

/** Answers that did not need the upstream's bytes (a HEAD revalidation is still a hit). */
const HIT_ORIGINS = new Set(['cache', 'revalidated', 'stale']);

export class Puller {
  private readonly tagLists = new SharedFlights<{ body: Buffer; link: string | undefined }>();
  private readonly referrerLists = new SharedFlights<{ body: Buffer; contentType: string } | null>();

  constructor(private readonly options: PullerOptions) {}

  manifest(target: RepositoryTarget, reference: ManifestReference, accept: string[]): Promise<ManifestAnswer> {
    const answer = this.options.manifests.resolve(target, reference, accept);
    // Resolving a tag is what a client does once per image pull (GET or HEAD, then by digest).
    return this.options.usage ? answer.then((manifest) => this.recordUsage(target, manifest.origin, reference.kind === 'tag', manifest)) : answer;
  }

  blobSize(target: RepositoryTarget, digest: Digest): Promise<number> {
    return this.options.blobs.size(target, digest);
  }

  blob(target: RepositoryTarget, digest: Digest): Promise<BlobAnswer> {
    const answer = this.options.blobs.get(target, digest);
    return this.options.usage ? answer.then((blob) => this.recordUsage(target, blob.origin, false, blob)) : answer;
  }

  private recordUsage<Answer>(target: RepositoryTarget, origin: string, pull: boolean, answer: Answer): Answer {
    this.options.usage?.record({ upstream: target.upstream, repository: target.repository, pull, hit: HIT_ORIGINS.has(origin) });
    return answer;
  }

  /**
   * The upstream's tag list; the tags this mirror knows when the upstream fails or is offline.
   * Knowing none, the upstream's failure is the answer (502/503): a 404 would tell clients the
   * repository does not exist.
   */
  async tagList(target: RepositoryTarget, query: string): Promise<TagList> {
    const upstream = this.options.upstreams.get(target.upstream);
    let failure: unknown;
    if (upstream && !this.options.offline) {
      try {
        const key = `${target.upstream}/${target.repository}?${query}`;
        const list = await this.tagLists.run(key, () => upstream.fetchTags(target.repository, query)).promise;
        return { ...list, fromCache: false };
      } catch (error) {
        if (!isUpstreamOutage(error)) throw error;
        failure = error;
      }
    }
    const tags = await this.options.tags.knownTags(target.upstream, target.repository);
    if (tags.length === 0) throw failure ?? new NameUnknownError(`repository ${target.repository} is not known to this mirror`);
    return { body: Buffer.from(JSON.stringify({ name: target.repository, tags })), link: undefined, fromCache: true };
  }

  /**
   * Referrers (distribution-spec v1.1 "Listing Referrers"): the upstream's referrers API where
   * it has one, else the tag-schema fallback `sha256-<hex>` index, else an empty index.
   */
  async referrers(target: RepositoryTarget, digest: Digest, artifactType: string | undefined): Promise<ReferrersAnswer> {
    const upstream = this.options.upstreams.get(target.upstream);
    if (upstream && !this.options.offline) {
      const key = `${target.upstream}/${target.repository}@${digest.value}?${artifactType ?? ''}`;
      const listed = await this.referrerLists.run(key, () => upstream.fetchReferrers(target.repository, digest.value, artifactType)).promise;
      if (listed) return { body: listed.body, filtered: artifactType !== undefined };
    }
    const fallback = await this.fallbackReferrers(target, digest);
    return filterReferrers(fallback, artifactType);
  }

  private async fallbackReferrers(target: RepositoryTarget, digest: Digest): Promise<unknown[]> {
    const tag = `${digest.algorithm}-${digest.hex}`;
    try {
      const index = await this.options.manifests.resolve(target, { kind: 'tag', tag }, []);
      const manifests = (JSON.parse(index.bytes.toString('utf8')) as { manifests?: unknown }).manifests;
      return Array.isArray(manifests) ? manifests : [];
    } catch (error) {
      if (error instanceof ManifestUnknownError) return [];
      throw error;
    }
  }
}

function filterReferrers(descriptors: unknown[], artifactType: string | undefined): ReferrersAnswer {
  const manifests = artifactType === undefined
    ? descriptors
    : descriptors.filter((descriptor) => (descriptor as { artifactType?: unknown }).artifactType === artifactType);
  const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  return { body: Buffer.from(JSON.stringify(index)), filtered: artifactType !== undefined };
}
