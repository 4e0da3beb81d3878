/**
 * What the HTTP routes call (compare distribution's BlobService / ManifestService): manifests,
 * blobs, tag lists and referrers of a repository, answered from the content and metadata stores
 * where possible and from the upstream otherwise. Routes never learn whether bytes were local;
 * an answer only says how its body is best sent. Implemented by proxy-registry.ts, and by
 * guarded-registry.ts around it for clients that did not authenticate.
 */
import type { RangeRequest } from '../domain/byte-range.js';
import type { Digest } from '../domain/digest.js';
import type { ManifestReference } from '../domain/reference.js';
import type { ProxiedTarget, RepositoryTarget } from '../domain/target.js';
import type { PageRequest } from '../metadata/metadata-store.js';
import type { BlobBody, ByteRange, GrowingFile } from '../storage/content-store.js';
import type { StoredManifest } from '../storage/manifest-store.js';
import type { UpstreamTimeAccount } from './charged-upstream.js';

/** cache: bytes already held; upstream: this request started the fill; joined: it joined a running one. */
export type BlobOrigin = 'cache' | 'upstream' | 'joined';
/** revalidated: a HEAD confirmed the cached tag; stale: served past its TTL because the upstream failed. */
export type ManifestOrigin = 'cache' | 'upstream' | 'revalidated' | 'stale';

/** How a blob's bytes are best sent: a content-store body, or a fill clients follow as it is written. */
export type ServedBody = BlobBody | { kind: 'growing'; file: GrowingFile };

export interface BlobAnswer {
  /** The blob's size; undefined while a fill whose upstream sent no Content-Length runs. */
  size: number | undefined;
  /** The bytes asked for, resolved against `size`; undefined: all of them. */
  range: ByteRange | undefined;
  origin: BlobOrigin;
  /** For fills: the repository (metadata key) the bytes come through from the upstream. */
  via?: string;
  /** For fills: fetched without the mirror's credentials, so the upstream serves them through `via` to anyone. */
  anonymous?: boolean;
  /** A stream body is already limited to `range`; file and growing bodies are cut by the sender. */
  body: ServedBody;
  /** Called once the body is no longer read (with the read error, if any), or when it is not sent. */
  release(error?: Error): void;
}

/** What every call made for a client request may carry. */
export interface RequestOptions {
  /** The request's account: upstream calls made for it add their time (charged-upstream.ts). */
  chargeTo?: UpstreamTimeAccount;
}

export interface BlobRequestOptions extends RequestOptions {
  /**
   * Aborts when the client has gone: it stops waiting for a fetch to start, and a queued fetch
   * nobody waits for any more is dropped (issue 12 item 8).
   */
  signal?: AbortSignal;
  /**
   * A miss is fetched without the mirror's credentials (UpstreamPort `withoutCredentials`), where
   * the upstream offers that: for a client that did not authenticate (guarded-registry.ts).
   */
  withoutCredentials?: boolean;
}

export interface ManifestRequestOptions extends RequestOptions {
  /**
   * The image's blobs are prefetched (manifest-prefetch.ts) only once this settles without
   * error: the access check of a client whose manifest was fetched beside it (guarded-registry.ts).
   */
  prefetchOnceAllowed?: Promise<unknown>;
}

export interface ManifestAnswer extends StoredManifest {
  origin: ManifestOrigin;
}

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
  /** More entries follow this page, from after this digest (a Link header; hosted repositories). */
  nextLast?: string;
}

/**
 * The read side of a registry over repositories of kind `T`: proxied ones here, hosted ones in
 * hosted/hosted-registry.ts, both behind http/routed-registry.ts for the routes.
 */
export interface RegistryService<T extends RepositoryTarget = ProxiedTarget> {
  /** `accept` holds the client's Accept headers (empty: anything). */
  manifest(target: T, reference: ManifestReference, accept: string[], options?: ManifestRequestOptions): Promise<ManifestAnswer>;
  /** The blob's size without reading or pulling its bytes (HEAD). */
  blobSize(target: T, digest: Digest, options?: RequestOptions): Promise<number>;
  blob(target: T, digest: Digest, range?: RangeRequest, options?: BlobRequestOptions): Promise<BlobAnswer>;
  /**
   * True when `blob()` of the whole blob would answer from the cache on what this process
   * remembers, with no lookup, access check or upstream request (the warm path). The warm-blob
   * lane (http/warm-blob-lane.ts) asks before it answers outside the app. A service without it
   * is never asked.
   */
  blobHeldInMemory?(target: T, digest: Digest): boolean;
  tagList(target: T, page: PageRequest, options?: RequestOptions): Promise<TagList>;
  /** `page`: `n` and `last` (a digest) of a page, where the repository pages its referrers. */
  referrers(target: T, digest: Digest, artifactType: string | undefined, page?: PageRequest, options?: RequestOptions): Promise<ReferrersAnswer>;
}
