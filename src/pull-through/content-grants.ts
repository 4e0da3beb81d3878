/**
 * Which content by digest an authenticated client may read under a proxied name, when access
 * rules (`auth.access`) grant pulls per repository.
 *
 * The rules are checked on the repository a request names (http/repository-access.ts), but the
 * cache holds each digest once, whatever repository put it there: a push to a hosted repository,
 * or a fill through a proxied one. So a user who may pull `docker.io/library/**` must not get,
 * as `library/alpine@<digest>`, what was pushed to `team/secret` or fetched through
 * `docker.io/acme/private` when the rules keep those from them. Content by digest under a
 * proxied name is served when:
 *
 *   - it is linked to the requested repository (the upstream served it through that name: a
 *     verified fill, a manifest fetch, an earlier confirmation here), or to any repository the
 *     user may pull (they could read it there anyway);
 *   - it is linked to no repository at all: not held yet (it is then fetched through the
 *     requested name, and where the bytes came from is settled on the answer, `settle`), or
 *     held and indexed without a record of where from (`import` of an archive, caches older
 *     than links). Not hosted content, though (indexed `retained`): unlinked, it was deleted
 *     from the repositories it was pushed to and waits for garbage collection; nor content held
 *     but not indexed yet, which a push published a moment ago and is about to record;
 *   - otherwise the requested name's upstream confirms it serves the content there (a HEAD with
 *     the mirror's credentials, as a fill through that name would learn). The confirmation links
 *     the repository, so it is asked once; offline, nothing can confirm, and the answer is 404.
 *
 * A confirmation is remembered in memory for `ttlMs`, so a warm blob costs no lookup per request.
 * Refusals say BLOB_UNKNOWN / MANIFEST_UNKNOWN, as for content that does not exist there.
 */
import { LRUCache } from 'lru-cache';
import type { Flights } from '../coordination/flights.js';
import type { Digest } from '../domain/digest.js';
import { BlobUnknownError, ManifestUnknownError } from '../domain/errors.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import type { LinkStore } from '../metadata/metadata-store.js';
import type { ContentKind, ProbeObject, ProbeResult } from './access-policy.js';
import type { BlobOrigin, ManifestOrigin } from './registry-service.js';

export interface ContentGrantsOptions {
  links: Pick<LinkStore, 'add' | 'has' | 'repositories'>;
  /**
   * The blob index's record of `digest` (blobs and manifests alike): `retained` when it was
   * pushed to a hosted repository; none while not held, or held a moment before being recorded.
   */
  indexed(digest: string): Promise<{ retained: boolean } | undefined>;
  /** True when the content store holds `digest`. */
  held(digest: Digest): Promise<boolean>;
  /**
   * True while the metadata store records the manifest: a process's memory of manifests keeps
   * one that garbage collection in another process (a worker, `registry-mirror gc`) removed.
   */
  isManifestRecorded(digest: string): Promise<boolean>;
  /** The repository key a download of `digest` running in this process goes through, if one runs. */
  fillingThrough(digest: Digest): string | undefined;
  /** The rules' pull grant on a repository's metadata key (hosted/access-rules.ts grantedByRules). */
  mayPull(user: string, key: string): boolean;
  /** The upstream of `target`, asked with the mirror's credentials (upstream-registry.ts probe); offline: 'missing'. */
  probe(target: ProxiedTarget, object: ProbeObject): Promise<ProbeResult>;
  flights: Flights;
  /** Deadline of one shared confirmation. */
  deadlineMs: number;
  /** How long a confirmation is remembered in memory; default 10 minutes. */
  ttlMs?: number;
}

export interface Content {
  kind: ContentKind;
  digest: Digest;
}

/** allowed: serve it; unlinked: serve it if the answer's bytes settle it (`settle`). */
export type GrantCheck = 'allowed' | 'unlinked';

/** Where an answer's bytes came from (registry-service.ts BlobAnswer, ManifestAnswer). */
export interface AnswerSource {
  origin: BlobOrigin | ManifestOrigin;
  /** For blob fills: the repository key the bytes come through. */
  via?: string | undefined;
}

const DEFAULT_TTL_MS = 10 * 60 * 1000;
/** Repositories looked at per digest for one the user may pull. */
const MAX_SOURCES_PER_DIGEST = 32;
/** Confirmations remembered in memory (about 200 bytes each): the warm set of authenticated pulls. */
const MAX_REMEMBERED = 20_000;

export class ContentGrants {
  readonly #options: ContentGrantsOptions;
  readonly #ttlMs: number;
  /** When `<repository key> <digest>` was last found linked or confirmed by the upstream. */
  readonly #confirmed = new LRUCache<string, number>({ max: MAX_REMEMBERED });

  constructor(options: ContentGrantsOptions) {
    this.#options = options;
    this.#ttlMs = options.ttlMs ?? DEFAULT_TTL_MS;
  }

  /** True when this process found `digest` linked to or confirmed for `target` within the TTL: no lookup needed. */
  grantedFromMemory(target: ProxiedTarget, digest: Digest): boolean {
    const at = this.#confirmed.get(memoryKey(repositoryKey(target), digest));
    return at !== undefined && Date.now() - at < this.#ttlMs;
  }

  /** Throws a not-found error unless `user` may read `content` under `target` (see the file's header). */
  async check(user: string, target: ProxiedTarget, content: Content): Promise<GrantCheck> {
    if (this.grantedFromMemory(target, content.digest)) return 'allowed';
    const key = repositoryKey(target);
    const { links, mayPull } = this.#options;
    if (await links.has(key, content.digest.value)) {
      this.#remember(key, content.digest);
      return 'allowed';
    }
    const sources = await links.repositories(content.digest.value, MAX_SOURCES_PER_DIGEST);
    if (sources.length === 0 && (await this.#fromNowhere(content.digest))) return 'unlinked';
    if (sources.some((source) => mayPull(user, source))) return 'allowed';
    await this.#confirm(target, content);
    return 'allowed';
  }

  /**
   * Linked nowhere, and either not held (whatever comes is fetched through the requested name and
   * settled) or held and indexed as cached, not hosted: imported, or cached before links existed.
   * Held but not indexed is content published a moment ago whose record and link are still on
   * their way: a hosted push publishes the verified bytes, then indexes and links them (a fill
   * links first, blob-download.ts). Where it came from is not known yet, so it is not 'unlinked'.
   */
  async #fromNowhere(digest: Digest): Promise<boolean> {
    const record = await this.#options.indexed(digest.value);
    return record ? !record.retained : !(await this.#options.held(digest));
  }

  /**
   * After an 'unlinked' check: an upstream fetch through the requested name needs nothing more;
   * bytes fetched through another repository need that repository to be the user's or the
   * upstream's confirmation; bytes that were cached meanwhile are checked again, now that they
   * may be linked.
   */
  async settle(user: string, target: ProxiedTarget, content: Content, answer: AnswerSource): Promise<void> {
    if (answer.origin !== 'cache') return this.#settleFetched(user, target, content, answer.via ?? repositoryKey(target));
    const check = await this.check(user, target, content);
    // Held, linked nowhere and indexed as cached: imported, unless it is a manifest garbage collection removed.
    if (check === 'unlinked' && content.kind === 'manifest' && !(await this.#options.isManifestRecorded(content.digest.value))) throw notFound(target, content);
  }

  /**
   * After an 'unlinked' check of a HEAD: the size came from an upstream HEAD through the
   * requested name, from content held without links, or from a download under way, which may be
   * going through another repository (its link comes only once it is verified).
   */
  async settleSize(user: string, target: ProxiedTarget, content: Content): Promise<void> {
    const via = this.#options.fillingThrough(content.digest);
    if (via !== undefined) return this.#settleFetched(user, target, content, via);
    await this.check(user, target, content);
  }

  /** Bytes on their way from the upstream through `via`: the requested repository's, the user's, or confirmed. */
  async #settleFetched(user: string, target: ProxiedTarget, content: Content, via: string): Promise<void> {
    if (via === repositoryKey(target) || this.#options.mayPull(user, via)) return;
    await this.#confirm(target, content);
  }

  /** One confirmation per repository and digest at a time wherever the flights reach; a link another process added answers for it. */
  async #confirm(target: ProxiedTarget, content: Content): Promise<void> {
    const key = repositoryKey(target);
    const digest = content.digest.value;
    const object: ProbeObject = content.kind === 'blob' ? { kind: 'blob', digest } : { kind: 'manifest', reference: digest };
    const work = async (): Promise<ProbeResult> => {
      if (await this.#options.links.has(key, digest)) return 'readable';
      const result = await this.#options.probe(target, object);
      if (result === 'readable') await this.#options.links.add(key, digest);
      return result;
    };
    const result = await this.#options.flights.run(`confirm ${key} ${content.kind} ${digest}`, work, { deadlineMs: this.#options.deadlineMs });
    if (result !== 'readable') throw notFound(target, content);
    this.#remember(key, content.digest);
  }

  #remember(key: string, digest: Digest): void {
    this.#confirmed.set(memoryKey(key, digest), Date.now());
  }
}

function memoryKey(key: string, digest: Digest): string {
  return `${key} ${digest.value}`;
}

function notFound(target: ProxiedTarget, content: Content): Error {
  const what = `${content.digest.value} is not known to this mirror in ${target.repository}`;
  return content.kind === 'blob' ? new BlobUnknownError(`blob ${what}`) : new ManifestUnknownError(`manifest ${what}`);
}
