/**
 * Keeps private upstream content away from clients that did not authenticate to the mirror.
 *
 * With its own upstream credentials the mirror can read repositories that anonymous access
 * cannot (a Docker Hub account's private repositories). Serving those to anyone who can reach
 * the mirror would hand the account's access to the whole network; the reference
 * implementation does exactly that. So, for upstreams the mirror has credentials for, and for
 * clients that did not authenticate:
 *
 *   1. The repository must be readable anonymously. Learned by an anonymous probe (the same
 *      request without the mirror's credentials: a manifest or blob HEAD, or a one-entry tag
 *      list), remembered for `probeTtlMs`, so a public repository costs its probe once.
 *   2. Content named by digest must have been seen in a readable repository. Blobs and
 *      manifests are stored once per digest whatever repository they came through, so a layer
 *      pulled through `acme/private` must not be handed out as `library/alpine@<digest>` unless
 *      the upstream confirms (anonymously) that it is there. Each digest remembers the
 *      repositories it came through; content the mirror does not have yet is fetched through the
 *      requested (readable) repository and needs no extra check.
 *
 * Refusals say NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN, the answer for content that does
 * not exist, so that anonymous clients cannot even learn that a private repository exists.
 * Upstreams without credentials need no checks: anonymous is all the mirror can read there.
 *
 * Known gap: between the "not held yet" check and the download, another client may start the
 * same blob through a private repository, and the anonymous request joins that download. It
 * needs the private blob's digest and an exact race; it is accepted rather than giving up
 * deduplicated downloads across repositories.
 */
import { LRUCache } from 'lru-cache';
import { parseDigest, type Digest } from '../domain/digest.js';
import { BlobUnknownError, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import type { RepositoryTarget } from '../upstream/upstream-router.js';
import { SharedFlights } from './shared-flight.js';

export type ProbeObject = { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };
/** readable: 200 without credentials; refused: 401/403; missing: 404 (the object, not the repository). */
export type ProbeResult = 'readable' | 'refused' | 'missing';
export type ContentKind = 'manifest' | 'blob';

export interface AnonymousProbe {
  probeAnonymous(repository: string, object: ProbeObject): Promise<ProbeResult>;
}

export interface AnonymousRequest {
  endpoint: 'manifests' | 'blobs' | 'tags' | 'referrers';
  /** Tag or digest for manifests, digest for blobs and referrers. */
  reference: string;
}

export interface AccessPolicyOptions {
  /** Only the upstreams the mirror has credentials for. */
  probes: Map<string, AnonymousProbe>;
  /** True when the mirror holds this content or is downloading it. */
  isLocal(kind: ContentKind, digest: Digest): Promise<boolean>;
  offline: boolean;
  /** How long a probe's verdict on a repository holds; default 10 minutes. */
  probeTtlMs?: number;
  /**
   * Where verdicts and sources outlive the process (metadata keyv, store/content-sources.ts),
   * so a restart or another process's `warm` does not send every cached digest to a re-check.
   */
  records?: AccessRecords;
}

export interface Verdict {
  readable: boolean;
  checkedAt: number;
}

export interface AccessRecords {
  verdict(repository: string): Promise<Verdict | undefined>;
  saveVerdict(repository: string, verdict: Verdict): Promise<void>;
  sources(digest: Digest): Promise<string[]>;
  saveSources(digest: Digest, repositories: string[]): Promise<void>;
}

const DEFAULT_PROBE_TTL_MS = 10 * 60 * 1000;
/** Repositories remembered per digest; beyond this the oldest is forgotten (costs a re-check). */
const MAX_SOURCES_PER_DIGEST = 32;

export class AccessPolicy {
  readonly #options: AccessPolicyOptions;
  readonly #ttlMs: number;
  readonly #verdicts = new LRUCache<string, Verdict>({ max: 100_000 });
  readonly #sources = new LRUCache<string, string[]>({ max: 500_000 });
  readonly #probes = new SharedFlights<ProbeResult>();

  constructor(options: AccessPolicyOptions) {
    this.#options = options;
    this.#ttlMs = options.probeTtlMs ?? DEFAULT_PROBE_TTL_MS;
  }

  /** True when some upstream needs checks at all (the mirror has credentials for it). */
  get active(): boolean {
    return this.#options.probes.size > 0;
  }

  /** Records that `digest` came from the upstream through `target` (fetch hooks call this). */
  recordSource(target: RepositoryTarget, digest: string): void {
    void this.#addSource(repositoryKey(target), parseDigest(digest)).catch(() => {
      // Losing the record costs one anonymous upstream check later, never a wrong answer.
    });
  }

  async #addSource(name: string, digest: Digest): Promise<void> {
    const known = await this.#sourcesOf(digest);
    if (known.includes(name)) return;
    const sources = [...known, name].slice(-MAX_SOURCES_PER_DIGEST);
    this.#sources.set(digest.value, sources);
    await this.#options.records?.saveSources(digest, sources);
  }

  async #sourcesOf(digest: Digest): Promise<string[]> {
    const cached = this.#sources.get(digest.value);
    if (cached) return cached;
    const stored = (await this.#options.records?.sources(digest)) ?? [];
    this.#sources.set(digest.value, stored);
    return stored;
  }

  async #verdictOf(key: string): Promise<Verdict | undefined> {
    const cached = this.#verdicts.get(key);
    if (cached) return cached;
    const stored = await this.#options.records?.verdict(key);
    if (stored) this.#verdicts.set(key, stored);
    return stored;
  }

  #saveVerdict(key: string, verdict: Verdict): void {
    this.#verdicts.set(key, verdict);
    void this.#options.records?.saveVerdict(key, verdict).catch(() => {});
  }

  /** Throws a not-found error unless an unauthenticated client may read this. */
  async assertAnonymousMayRead(target: RepositoryTarget, request: AnonymousRequest): Promise<void> {
    const probe = this.#options.probes.get(target.upstream);
    if (!probe) return;
    const content = contentOf(request);
    const object = probeObjectOf(request);
    const verdict = await this.#repositoryVerdict(probe, target, object);
    if (verdict === 'refused') throw new NameUnknownError(`repository ${target.repository} is not known to this mirror`);
    if (verdict === 'missing') throw notFound(target, request.endpoint, request.reference);
    // A probe of this very object has just confirmed it; otherwise check where it was seen.
    if (content && verdict !== 'readable-object') await this.#assertSeenInReadable(probe, target, content);
  }

  /** 'readable-object' when the probe was made just now for the requested object itself. */
  async #repositoryVerdict(probe: AnonymousProbe, target: RepositoryTarget, object: ProbeObject): Promise<'readable' | 'readable-object' | 'refused' | 'missing'> {
    const key = repositoryKey(target);
    const known = await this.#verdictOf(key);
    const fresh = known && (this.#options.offline || Date.now() - known.checkedAt < this.#ttlMs);
    if (known && fresh) return known.readable ? 'readable' : 'refused';
    // Offline and never probed: nothing can be learned, so the answer is no.
    if (this.#options.offline) return 'refused';
    let result: ProbeResult;
    try {
      result = await this.#probe(probe, target, object);
    } catch (error) {
      // The upstream is unreachable: an earlier verdict is better than refusing everything.
      if (known) return known.readable ? 'readable' : 'refused';
      throw error;
    }
    if (result === 'missing') return 'missing';
    this.#saveVerdict(key, { readable: result === 'readable', checkedAt: Date.now() });
    if (result === 'refused') return 'refused';
    if (object.kind === 'blob') this.recordSource(target, object.digest);
    if (object.kind === 'manifest' && object.reference.includes(':')) this.recordSource(target, object.reference);
    return 'readable-object';
  }

  async #assertSeenInReadable(probe: AnonymousProbe, target: RepositoryTarget, content: { kind: ContentKind; digest: Digest }): Promise<void> {
    const sources = await this.#sourcesOf(content.digest);
    const name = repositoryKey(target);
    if (sources.includes(name) || (await this.#anyReadable(sources))) return;
    // Not held yet: it will be fetched through this repository, which anonymous access can read.
    if (!(await this.#options.isLocal(content.kind, content.digest))) return;
    const endpoint = content.kind === 'blob' ? 'blobs' : 'manifests';
    if (this.#options.offline) throw notFound(target, endpoint, content.digest.value);
    const object: ProbeObject = content.kind === 'blob' ? { kind: 'blob', digest: content.digest.value } : { kind: 'manifest', reference: content.digest.value };
    if ((await this.#probe(probe, target, object)) !== 'readable') throw notFound(target, endpoint, content.digest.value);
    this.recordSource(target, content.digest.value);
  }

  async #anyReadable(repositories: string[]): Promise<boolean> {
    for (const repository of repositories) if ((await this.#verdictOf(repository))?.readable) return true;
    return false;
  }

  #probe(probe: AnonymousProbe, target: RepositoryTarget, object: ProbeObject): Promise<ProbeResult> {
    const what = object.kind === 'tags' ? 'tags' : object.kind === 'blob' ? object.digest : object.reference;
    return this.#probes.run(`${repositoryKey(target)} ${object.kind} ${what}`, () => probe.probeAnonymous(target.repository, object)).promise;
  }
}

function repositoryKey(target: RepositoryTarget): string {
  return `${target.upstream}/${target.repository}`;
}

function contentOf(request: AnonymousRequest): { kind: ContentKind; digest: Digest } | undefined {
  if (request.endpoint === 'blobs') return { kind: 'blob', digest: parseDigest(request.reference) };
  if (request.endpoint === 'manifests' && request.reference.includes(':')) return { kind: 'manifest', digest: parseDigest(request.reference) };
  return undefined;
}

function probeObjectOf(request: AnonymousRequest): ProbeObject {
  if (request.endpoint === 'blobs') return { kind: 'blob', digest: request.reference };
  if (request.endpoint === 'manifests') return { kind: 'manifest', reference: request.reference };
  return { kind: 'tags' };
}

function notFound(target: RepositoryTarget, endpoint: AnonymousRequest['endpoint'], reference: string): Error {
  if (endpoint === 'blobs') return new BlobUnknownError(`blob ${reference} is not known to this mirror in ${target.repository}`);
  if (endpoint === 'manifests') return new ManifestUnknownError(`manifest ${reference} is not known to this mirror in ${target.repository}`);
  return new NameUnknownError(`repository ${target.repository} is not known to this mirror`);
}
