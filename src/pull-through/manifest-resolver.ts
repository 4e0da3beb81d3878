/**
 * Manifests: by digest from the store forever once stored; by tag from the tag store while fresh
 * (`tags.ttlSeconds`), then revalidated with a HEAD (Docker Hub does not count HEADs against its
 * pull rate limit), fetching the body only when the digest changed. When the upstream is down or
 * rate-limiting, a known tag is served stale (within `tags.staleIfErrorSeconds`); with no
 * upstream at all (offline) a known tag is served whatever its age.
 *
 * Manifests are stored byte-exact and never converted; their digest is checked against the
 * reference or the upstream's Docker-Content-Digest before they are stored, and only then is
 * the repository linked to them (the upstream confirmed the repository serves them).
 */
import type { Flights } from '../coordination/flights.js';
import { digestOf, parseDigest, type Digest } from '../domain/digest.js';
import { isUpstreamOutage, ManifestInvalidError, ManifestUnknownError, UpstreamBadResponseError } from '../domain/errors.js';
import { acceptsMediaType, mediaTypeFromManifest, UPSTREAM_MANIFEST_ACCEPT } from '../domain/media-types.js';
import type { ManifestReference } from '../domain/reference.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import type { LinkStore, TagRecord, TagStore } from '../metadata/metadata-store.js';
import type { ManifestStore, StoredManifest } from '../storage/manifest-store.js';
import type { UpstreamTimeAccount } from './charged-upstream.js';
import type { ManifestAnswer } from './registry-service.js';
import type { UpstreamPort } from './upstream-port.js';
import type { Upstreams } from './upstreams.js';

export interface ManifestResolverOptions {
  manifests: ManifestStore;
  tags: TagStore;
  links: Pick<LinkStore, 'add'>;
  upstreams: Upstreams;
  flights: Flights;
  ttlMs: number;
  staleIfErrorMs: number | null;
  /** Deadline of one shared manifest request (flights). */
  deadlineMs: number;
  onStale?: (target: ProxiedTarget, tag: string, error: unknown) => void;
}

interface TagKey {
  target: ProxiedTarget;
  tag: string;
}

export class ManifestResolver {
  constructor(private readonly options: ManifestResolverOptions) {}

  /** `accept` holds the client's Accept headers (empty: anything); upstream calls are charged to `chargeTo`. */
  async resolve(target: ProxiedTarget, reference: ManifestReference, accept: string[], chargeTo?: UpstreamTimeAccount): Promise<ManifestAnswer> {
    if (reference.kind === 'digest') return this.#byDigest(target, reference.digest, accept, chargeTo);
    const key = { target, tag: reference.tag };
    const record = await this.options.tags.get(repositoryKey(target), reference.tag);
    const stored = record && (await this.options.manifests.read(parseDigest(record.digest)));
    if (record && stored && acceptsMediaType(accept, stored.mediaType)) {
      // Looked up only once the tag is due (a warm tag asks nothing of the upstream).
      const upstream = Date.now() - record.checkedAt < this.options.ttlMs ? undefined : this.options.upstreams.for(target, chargeTo);
      if (!upstream) return { ...stored, origin: 'cache' };
      return this.#shared(`revalidate ${tagId(key)}`, async (signal) => (await this.#freshShared(key, accept)) ?? this.#revalidate(upstream, key, record, stored, signal, chargeTo));
    }
    const online = this.#upstream(target, `${target.repository}:${reference.tag}`, chargeTo);
    // Cached, but as a type this client does not take: ask the upstream the client's way.
    if (stored) return this.#shared(`tag ${tagId(key)} ${accept.join(',')}`, (signal) => this.#fetch(online, target, reference.tag, accept.join(', '), signal));
    return this.#shared(`tag ${tagId(key)}`, async (signal) => (await this.#freshShared(key, accept)) ?? this.#fetchTag(online, key, accept, signal));
  }

  /**
   * A flight shared across replicas runs its work again in every replica once the owner's flight
   * ends (coordination/flights.ts): by then the owner may have revalidated or fetched the tag, so
   * the work looks at the shared record first. That keeps it to one upstream request per tag per
   * TTL across the fleet (issue 15 item 4).
   */
  async #freshShared(key: TagKey, accept: string[]): Promise<ManifestAnswer | undefined> {
    const record = await this.options.tags.get(repositoryKey(key.target), key.tag);
    if (!record || Date.now() - record.checkedAt >= this.options.ttlMs) return undefined;
    const stored = await this.options.manifests.read(parseDigest(record.digest));
    return stored && acceptsMediaType(accept, stored.mediaType) ? { ...stored, origin: 'cache' } : undefined;
  }

  async #byDigest(target: ProxiedTarget, digest: Digest, accept: string[], chargeTo: UpstreamTimeAccount | undefined): Promise<ManifestAnswer> {
    // A digest names exact bytes: once stored, the upstream is never needed again.
    const stored = await this.options.manifests.read(digest);
    if (stored) return { ...stored, origin: 'cache' };
    const upstream = this.#upstream(target, `${target.repository}@${digest.value}`, chargeTo);
    const acceptList = [UPSTREAM_MANIFEST_ACCEPT, ...accept].join(', ');
    return this.#shared(`digest ${repositoryKey(target)}@${digest.value}`, async (signal) => {
      // Another replica's flight for it may just have stored it.
      const late = await this.options.manifests.read(digest);
      return late ? { ...late, origin: 'cache' } : this.#fetch(upstream, target, digest.value, acceptList, signal, digest);
    });
  }

  async #fetchTag(upstream: UpstreamPort, key: TagKey, accept: string[], signal: AbortSignal): Promise<ManifestAnswer> {
    const answer = await this.#fetch(upstream, key.target, key.tag, UPSTREAM_MANIFEST_ACCEPT, signal);
    await this.#remember(key, answer);
    if (acceptsMediaType(accept, answer.mediaType)) return answer;
    return this.#fetch(upstream, key.target, key.tag, accept.join(', '), signal);
  }

  async #revalidate(upstream: UpstreamPort, key: TagKey, record: TagRecord, stored: StoredManifest, signal: AbortSignal, chargeTo: UpstreamTimeAccount | undefined): Promise<ManifestAnswer> {
    const { target, tag } = key;
    try {
      const head = await upstream.fetchManifest(target.repository, tag, { method: 'HEAD', accept: UPSTREAM_MANIFEST_ACCEPT, signal });
      if (head.digest === record.digest) {
        await this.options.tags.set(repositoryKey(target), tag, { ...record, checkedAt: Date.now() });
        await this.options.links.add(repositoryKey(target), record.digest);
        return { ...stored, origin: 'revalidated' };
      }
      const changed = head.digest ? await this.#byDigest(target, parseDigest(head.digest), [], chargeTo) : await this.#fetch(upstream, target, tag, UPSTREAM_MANIFEST_ACCEPT, signal);
      await this.#remember(key, changed);
      return { ...changed, origin: 'upstream' };
    } catch (error) {
      if (!isUpstreamOutage(error) || !this.#withinStaleLimit(record)) throw error;
      this.options.onStale?.(target, tag, error);
      return { ...stored, origin: 'stale' };
    }
  }

  /** GETs a manifest, checks its digest, stores it and links the repository to it. */
  async #fetch(upstream: UpstreamPort, target: ProxiedTarget, reference: string, accept: string, signal: AbortSignal, expected?: Digest): Promise<ManifestAnswer> {
    const response = await upstream.fetchManifest(target.repository, reference, { method: 'GET', accept, signal });
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
    await this.options.links.add(repositoryKey(target), stored.digest);
    return { ...stored, origin: 'upstream' };
  }

  async #remember(key: TagKey, answer: StoredManifest): Promise<void> {
    const record = { digest: answer.digest, mediaType: answer.mediaType, size: answer.bytes.byteLength, checkedAt: Date.now() };
    await this.options.tags.set(repositoryKey(key.target), key.tag, record);
  }

  #withinStaleLimit(record: TagRecord): boolean {
    const limit = this.options.staleIfErrorMs;
    return limit === null || Date.now() - record.checkedAt < this.options.ttlMs + limit;
  }

  #shared(key: string, work: (signal: AbortSignal) => Promise<ManifestAnswer>): Promise<ManifestAnswer> {
    return this.options.flights.run(`manifest ${key}`, work, { deadlineMs: this.options.deadlineMs });
  }

  #upstream(target: ProxiedTarget, what: string, chargeTo: UpstreamTimeAccount | undefined): UpstreamPort {
    return this.options.upstreams.require(target, (reason) => new ManifestUnknownError(`manifest ${what} is not cached and ${reason}`), chargeTo);
  }
}

function tagId(key: TagKey): string {
  return `${repositoryKey(key.target)}:${key.tag}`;
}
