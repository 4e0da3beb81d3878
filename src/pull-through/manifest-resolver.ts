/**
 * Manifests: by digest from the cache forever once stored; by tag from the tag index while fresh
 * (`tags.ttlSeconds`), then revalidated with a HEAD — Docker Hub does not count HEADs against its
 * pull rate limit — fetching the body only when the digest changed. When the upstream is down
 * or rate-limiting, a known tag is served stale (within `tags.staleIfErrorSeconds`).
 *
 * Manifests are stored byte-exact and never converted; their digest is checked against the
 * reference or the upstream's Docker-Content-Digest before they are stored.
 */
import { digestOf, parseDigest, type Digest } from '../domain/digest.js';
import { isUpstreamOutage, ManifestInvalidError, ManifestUnknownError, UpstreamBadResponseError } from '../domain/errors.js';
import { acceptsMediaType, mediaTypeFromManifest, UPSTREAM_MANIFEST_ACCEPT } from '../domain/media-types.js';
import type { ManifestReference } from '../domain/reference.js';
import type { TagIndex, TagKey, TagRecord } from '../metadata/tag-index.js';
import type { ManifestStore, StoredManifest } from '../store/manifest-store.js';
import type { RepositoryTarget } from '../upstream/upstream-router.js';
import { SharedFlights } from './shared-flight.js';
import type { UpstreamPort } from './upstream-port.js';

export type ManifestOrigin = 'cache' | 'upstream' | 'revalidated' | 'stale';

export interface ManifestAnswer extends StoredManifest {
  origin: ManifestOrigin;
}

export interface ManifestResolverOptions {
  manifests: ManifestStore;
  tags: TagIndex;
  upstreams: Map<string, UpstreamPort>;
  ttlMs: number;
  staleIfErrorMs: number | null;
  offline: boolean;
  onStale?: (target: RepositoryTarget, tag: string, error: unknown) => void;
  /** Called for every manifest fetched from the upstream, naming the repository it came through. */
  onUpstreamFetch?: (target: RepositoryTarget, digest: string) => void;
}

export class ManifestResolver {
  private readonly flights = new SharedFlights<ManifestAnswer>();

  constructor(private readonly options: ManifestResolverOptions) {}

  /** `accept` holds the client's Accept headers (empty: anything). */
  async resolve(target: RepositoryTarget, reference: ManifestReference, accept: string[]): Promise<ManifestAnswer> {
    if (reference.kind === 'digest') return this.byDigest(target, reference.digest, accept);
    const key = { ...target, tag: reference.tag };
    const record = await this.options.tags.get(key);
    const stored = record && (await this.options.manifests.read(parseDigest(record.digest)));
    if (record && stored && acceptsMediaType(accept, stored.mediaType)) {
      if (this.options.offline || Date.now() - record.checkedAt < this.options.ttlMs) return { ...stored, origin: 'cache' };
      return this.shared(`revalidate ${tagId(key)}`, () => this.revalidate(key, record, stored));
    }
    this.assertOnline(`${target.repository}:${reference.tag}`);
    if (stored) {
      // The cached type is not one this client takes: ask the upstream the client's way.
      return this.shared(`tag ${tagId(key)} ${accept.join(',')}`, () => this.fetch(target, reference.tag, accept.join(', ')));
    }
    return this.shared(`tag ${tagId(key)}`, () => this.fetchTag(key, accept));
  }

  private async byDigest(target: RepositoryTarget, digest: Digest, accept: string[]): Promise<ManifestAnswer> {
    // A digest names exact bytes: once stored, the upstream is never needed again.
    const stored = await this.options.manifests.read(digest);
    if (stored) return { ...stored, origin: 'cache' };
    this.assertOnline(`${target.repository}@${digest.value}`);
    const acceptList = [UPSTREAM_MANIFEST_ACCEPT, ...accept].join(', ');
    return this.shared(`digest ${target.upstream}/${target.repository}@${digest.value}`, () => this.fetch(target, digest.value, acceptList, digest));
  }

  private async fetchTag(key: TagKey, accept: string[]): Promise<ManifestAnswer> {
    const answer = await this.fetch(key, key.tag, UPSTREAM_MANIFEST_ACCEPT);
    await this.remember(key, answer);
    if (acceptsMediaType(accept, answer.mediaType)) return answer;
    return this.fetch(key, key.tag, accept.join(', '));
  }

  private async revalidate(key: TagKey, record: TagRecord, stored: StoredManifest): Promise<ManifestAnswer> {
    const upstream = this.upstream(key);
    try {
      const head = await upstream.fetchManifest(key.repository, key.tag, { method: 'HEAD', accept: UPSTREAM_MANIFEST_ACCEPT });
      if (head.digest === record.digest) {
        await this.options.tags.set(key, { ...record, checkedAt: Date.now() });
        return { ...stored, origin: 'revalidated' };
      }
      const changed = head.digest ? await this.byDigest(key, parseDigest(head.digest), []) : await this.fetch(key, key.tag, UPSTREAM_MANIFEST_ACCEPT);
      await this.remember(key, changed);
      return { ...changed, origin: 'upstream' };
    } catch (error) {
      if (!isUpstreamOutage(error) || !this.withinStaleLimit(record)) throw error;
      this.options.onStale?.(key, key.tag, error);
      return { ...stored, origin: 'stale' };
    }
  }

  /** GETs a manifest, checks its digest, stores it. */
  private async fetch(target: RepositoryTarget, reference: string, accept: string, expected?: Digest): Promise<ManifestAnswer> {
    const response = await this.upstream(target).fetchManifest(target.repository, reference, { method: 'GET', accept });
    const bytes = response.bytes;
    if (!bytes) throw new UpstreamBadResponseError(`upstream sent no body for manifest ${reference}`);
    const claimed = expected ?? (response.digest ? parseDigest(response.digest) : undefined);
    const digest = digestOf(bytes, claimed?.algorithm);
    if (claimed && claimed.value !== digest.value) {
      throw new UpstreamBadResponseError(`manifest ${target.repository}:${reference} hashes to ${digest.value}, not ${claimed.value}`);
    }
    const mediaType = response.mediaType && response.mediaType !== 'application/json' ? response.mediaType : mediaTypeFromManifest(bytes);
    if (!mediaType) throw new ManifestInvalidError(`manifest ${target.repository}:${reference} is not JSON`);
    const stored = await this.options.manifests.write(digest, bytes, mediaType);
    this.options.onUpstreamFetch?.(target, stored.digest);
    return { ...stored, origin: 'upstream' };
  }

  private async remember(key: TagKey, answer: StoredManifest): Promise<void> {
    await this.options.tags.set(key, { digest: answer.digest, mediaType: answer.mediaType, size: answer.bytes.byteLength, checkedAt: Date.now() });
  }

  private withinStaleLimit(record: TagRecord): boolean {
    const limit = this.options.staleIfErrorMs;
    return limit === null || Date.now() - record.checkedAt < this.options.ttlMs + limit;
  }

  private shared(key: string, work: () => Promise<ManifestAnswer>): Promise<ManifestAnswer> {
    return this.flights.run(key, work).promise;
  }

  private assertOnline(what: string): void {
    if (this.options.offline) throw new ManifestUnknownError(`manifest ${what} is not cached and this mirror is offline`);
  }

  private upstream(target: RepositoryTarget): UpstreamPort {
    const upstream = this.options.upstreams.get(target.upstream);
    if (!upstream) throw new ManifestUnknownError(`no upstream ${target.upstream}`);
    return upstream;
  }
}

function tagId(key: TagKey): string {
  return `${key.upstream}/${key.repository}:${key.tag}`;
}
