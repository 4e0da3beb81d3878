/**
 * Keeps private upstream content away from clients that did not authenticate to the mirror.
 *
 * With its own upstream credentials the mirror can read repositories that anonymous access
 * cannot (a Docker Hub account's private repositories). Serving those to anyone who can reach
 * the mirror would hand the account's access to the whole network; the reference
 * implementation does exactly that. So, for upstreams the mirror has credentials for, and for
 * clients that did not authenticate (guarded-registry.ts applies this):
 *
 *   1. The repository must be readable anonymously. Learned by an anonymous probe (the same
 *      request without the mirror's credentials: a manifest or blob HEAD, or a one-entry tag
 *      list), or from a blob fetched without them (guarded-registry.ts), and remembered for
 *      `probeTtlMs` (metadata verdicts), so a public repository costs its probe once.
 *   2. Content named by digest must be linked to a readable repository (metadata links): the
 *      upstream confirmed that repository serves it, by a 200 for that name, a verified fill
 *      through it (blob-download.ts, manifest-resolver.ts) or an anonymous probe here. Content
 *      is stored once per digest whatever repository it came through, so a layer pulled through
 *      `acme/private` is not handed out as `library/alpine@<digest>` otherwise. Content the
 *      mirror does not hold yet is 'unconfirmed': it may be served as fetched from the upstream
 *      through the requested repository; if it turns out to come from elsewhere (it was cached,
 *      or a fill through another repository was joined, in the meantime), `confirm` decides.
 *      A confirmation is remembered in memory for the probe TTL, like a verdict, so a warm blob
 *      costs no lookup per request (allowedFromMemory).
 *
 * Content is stored once per digest across upstreams too, so rule 2 holds under every upstream
 * once one has credentials: under an upstream without them a repository needs no verdict (the
 * mirror reads it as any anonymous client would), but content named by digest is served from
 * the cache only when linked to a readable repository or confirmed by that upstream (a probe,
 * which for it is any request); otherwise `dead.io/x@<digest>` handed out what was cached
 * through `docker.io/acme/private`.
 *
 * Refusals say NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN, the answer for content that does
 * not exist, so that anonymous clients cannot even learn that a private repository exists.
 */
import { LRUCache } from 'lru-cache';
import type { Flights } from '../coordination/flights.js';
import { parseDigest, type Digest } from '../domain/digest.js';
import { BlobUnknownError, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import type { LinkStore, Verdict, VerdictStore } from '../metadata/metadata-store.js';

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

/** allowed: serve it; unconfirmed: serve it only as fetched through the requested repository. */
export type AccessCheck = 'allowed' | 'unconfirmed';

export interface AccessPolicyOptions {
  /** Every upstream's, to ask it without credentials. */
  probes: Map<string, AnonymousProbe>;
  /** The upstreams the mirror has credentials for: their repositories need a verdict (rule 1). */
  guarded: ReadonlySet<string>;
  verdicts: VerdictStore;
  links: Pick<LinkStore, 'add' | 'has' | 'repositories'>;
  flights: Flights;
  /**
   * True when the mirror holds this content, or is downloading it through another repository
   * than `via` (a download through `via` itself confirms `via` once it is verified).
   */
  isLocal(kind: ContentKind, digest: Digest, via: string): Promise<boolean>;
  /**
   * True while a fill of this content through `via` itself is under way in this process: the
   * upstream served it under that name, and the fill links `via` once it has published the
   * blob. A client arriving between the publish and the link needs no probe (issue 16).
   */
  fillingThrough?(kind: ContentKind, digest: Digest, via: string): boolean;
  /** How long a probe's verdict on a repository holds; default 10 minutes. */
  probeTtlMs?: number;
  /** Deadline of one shared probe. */
  deadlineMs: number;
  /** Verdicts remembered in memory at most (`metadata.maxVerdicts`); default 100,000. */
  maxVerdicts?: number;
}

const DEFAULT_PROBE_TTL_MS = 10 * 60 * 1000;
const DEFAULT_MAX_VERDICTS = 100_000;
/** A verdict is kept this long in the metadata store: past its TTL it still answers while the upstream is down. */
const VERDICT_KEEP_MS = 7 * 24 * 60 * 60 * 1000;
/** Repositories looked at per digest for a readable one. */
const MAX_SOURCES_PER_DIGEST = 32;
/** Digest confirmations remembered in memory (about 200 bytes each): the warm set of anonymous pulls. */
const MAX_REMEMBERED_CONFIRMATIONS = 20_000;

export class AccessPolicy {
  readonly #options: AccessPolicyOptions;
  readonly #ttlMs: number;
  readonly #verdicts: LRUCache<string, Verdict>;
  /** When a digest was last confirmed for a repository (confirmationKey): by the metadata store or a probe. */
  readonly #confirmations = new LRUCache<string, number>({ max: MAX_REMEMBERED_CONFIRMATIONS });

  constructor(options: AccessPolicyOptions) {
    this.#options = options;
    this.#verdicts = new LRUCache({ max: options.maxVerdicts ?? DEFAULT_MAX_VERDICTS });
    this.#ttlMs = options.probeTtlMs ?? DEFAULT_PROBE_TTL_MS;
  }

  /** Throws a not-found error unless an unauthenticated client may read this. */
  async check(target: ProxiedTarget, request: AnonymousRequest): Promise<AccessCheck> {
    const probe = this.#options.probes.get(target.upstream);
    if (!probe) return 'allowed';
    const content = contentOf(request);
    if (!this.#options.guarded.has(target.upstream)) return content ? this.#seen(probe, target, content, true) : 'allowed';
    const verdict = await this.#repositoryVerdict(probe, target, probeObjectOf(request));
    if (verdict === 'refused') throw repositoryUnknown(target);
    if (verdict === 'missing') throw notFound(target, request.endpoint, request.reference);
    if (!content) return 'allowed';
    // A probe of this very object has just confirmed it; otherwise check where it was seen.
    if (verdict === 'readable-object') {
      this.#rememberConfirmed(repositoryKey(target), content.digest.value);
      return 'allowed';
    }
    return this.#seen(probe, target, content, true);
  }

  /**
   * True when checking `target` needs no upstream request about the repository itself: its
   * verdict is fresh, or the upstream needs no guarding. Content checks may still probe.
   */
  async knowsRepository(target: ProxiedTarget): Promise<boolean> {
    if (!this.#options.guarded.has(target.upstream)) return true;
    const known = await this.#verdictOf(repositoryKey(target));
    return known !== undefined && this.#isFresh(known.checkedAt);
  }

  /**
   * True when check() would allow this request on what this process already remembers: the
   * repository's verdict is fresh and readable and, for content named by digest, the metadata
   * store or a probe confirmed the digest for this repository within the probe TTL. No lookup and
   * no promise: the warm path of a cached blob (guarded-registry.ts), where a SQLite link lookup
   * per request cost more than the rest of the access check. False only means: ask check().
   * Only confirmations are remembered, never an absence, so a link another process adds is
   * found by the next request.
   */
  allowedFromMemory(target: ProxiedTarget, request: AnonymousRequest): boolean {
    if (!this.#options.probes.has(target.upstream)) return true;
    const key = repositoryKey(target);
    if (this.#options.guarded.has(target.upstream)) {
      const verdict = this.#verdicts.get(key);
      if (!verdict?.readable || !this.#isFresh(verdict.checkedAt)) return false;
    }
    const digest = contentDigestOf(request);
    return digest === undefined || this.#confirmedRecently(key, digest);
  }

  /**
   * The upstream served `digest` through `target` to a fetch without credentials: what a probe
   * of that blob would have learned (the repository is readable, and this content in it). The
   * fill links the digest once it is verified.
   */
  async servedAnonymously(target: ProxiedTarget, digest: Digest): Promise<void> {
    const key = repositoryKey(target);
    this.#rememberConfirmed(key, digest.value);
    await this.#saveVerdict(key, true);
  }

  /** The upstream refused a fetch without credentials through `target`: what a probe refused would have learned. */
  async refusedAnonymously(target: ProxiedTarget): Promise<NameUnknownError> {
    await this.#saveVerdict(repositoryKey(target), false);
    return repositoryUnknown(target);
  }

  /** The content came from elsewhere than an upstream fetch through `target`: throws unless `target` serves it. */
  async confirm(target: ProxiedTarget, content: { kind: ContentKind; digest: Digest }): Promise<void> {
    const probe = this.#options.probes.get(target.upstream);
    if (probe) await this.#seen(probe, target, content, false);
  }

  async #seen(probe: AnonymousProbe, target: ProxiedTarget, content: { kind: ContentKind; digest: Digest }, unheldMayFetch: boolean): Promise<AccessCheck> {
    const { links, isLocal } = this.#options;
    const key = repositoryKey(target);
    const digest = content.digest.value;
    if (this.#confirmedRecently(key, digest)) return 'allowed';
    if ((await links.has(key, digest)) || (await this.#anyReadable(await links.repositories(digest, MAX_SOURCES_PER_DIGEST)))) {
      this.#rememberConfirmed(key, digest);
      return 'allowed';
    }
    if (this.#options.fillingThrough?.(content.kind, content.digest, key)) return unheldMayFetch ? 'unconfirmed' : 'allowed';
    // Not held yet: it will be fetched through this repository, which anonymous access can read.
    if (unheldMayFetch && !(await isLocal(content.kind, content.digest, key))) return 'unconfirmed';
    const object: ProbeObject = content.kind === 'blob' ? { kind: 'blob', digest } : { kind: 'manifest', reference: digest };
    const endpoint = content.kind === 'blob' ? 'blobs' : 'manifests';
    const linkedMeanwhile = async () => ((await links.has(key, digest)) ? ('readable' as const) : undefined);
    const linkIfReadable = async (result: ProbeResult) => {
      if (result === 'readable') await links.add(key, digest);
    };
    if ((await this.#probe(probe, target, object, linkedMeanwhile, linkIfReadable)) !== 'readable') throw notFound(target, endpoint, digest);
    this.#rememberConfirmed(key, digest);
    return 'allowed';
  }

  /** 'readable-object' when the probe was made just now for the requested object itself. */
  async #repositoryVerdict(probe: AnonymousProbe, target: ProxiedTarget, object: ProbeObject): Promise<'readable' | 'readable-object' | 'refused' | 'missing'> {
    const key = repositoryKey(target);
    const known = await this.#verdictOf(key);
    if (known && this.#isFresh(known.checkedAt)) return known.readable ? 'readable' : 'refused';
    let result: ProbeResult | Verdict;
    try {
      result = await this.#probe(probe, target, object, () => this.#freshStoredVerdict(key), (probed) => this.#recordRepositoryProbe(key, object, probed));
    } catch (error) {
      // The upstream is unreachable: an earlier verdict is better than refusing everything.
      if (known) return known.readable ? 'readable' : 'refused';
      throw error;
    }
    // Another process's probe decided while this one waited: the repository's verdict, not this object's.
    if (typeof result === 'object') return result.readable ? 'readable' : 'refused';
    if (result === 'missing') return 'missing';
    return result === 'refused' ? 'refused' : 'readable-object';
  }

  /** What a repository probe learned, recorded before its flight ends (#probe). */
  async #recordRepositoryProbe(key: string, object: ProbeObject, result: ProbeResult): Promise<void> {
    if (result === 'missing') return;
    await this.#saveVerdict(key, result === 'readable');
    const digest = object.kind === 'blob' ? object.digest : object.kind === 'manifest' && object.reference.includes(':') ? object.reference : undefined;
    if (result === 'readable' && digest) await this.#options.links.add(key, digest);
  }

  async #verdictOf(key: string): Promise<Verdict | undefined> {
    const cached = this.#verdicts.get(key);
    if (cached) return cached;
    const stored = await this.#options.verdicts.get(key);
    if (stored) this.#verdicts.set(key, stored);
    return stored;
  }

  /** A fresh verdict in the metadata store, which another process may have written since this one looked. */
  async #freshStoredVerdict(key: string): Promise<Verdict | undefined> {
    const stored = await this.#options.verdicts.get(key);
    if (!stored || !this.#isFresh(stored.checkedAt)) return undefined;
    this.#verdicts.set(key, stored);
    return stored;
  }

  #rememberConfirmed(key: string, digest: string): void {
    this.#confirmations.set(confirmationKey(key, digest), Date.now());
  }

  #confirmedRecently(key: string, digest: string): boolean {
    const confirmedAt = this.#confirmations.get(confirmationKey(key, digest));
    return confirmedAt !== undefined && this.#isFresh(confirmedAt);
  }

  /** A verdict or confirmation made at `checkedAt` (ms since the epoch) still holds: the probe TTL. */
  #isFresh(checkedAt: number): boolean {
    return Date.now() - checkedAt < this.#ttlMs;
  }

  /** Records what the upstream said of `key` just now. */
  async #saveVerdict(key: string, readable: boolean): Promise<void> {
    const verdict: Verdict = { readable, checkedAt: Date.now() };
    this.#verdicts.set(key, verdict);
    // Losing the record costs one anonymous upstream check later, never a wrong answer.
    await this.#options.verdicts.set(key, verdict, VERDICT_KEEP_MS).catch(() => {});
  }

  async #anyReadable(repositories: string[]): Promise<boolean> {
    for (const repository of repositories) if (this.#isOpen(repository) || (await this.#verdictOf(repository))?.readable) return true;
    return false;
  }

  /** A repository key (`<upstream>/<name>`) of an upstream without credentials: what the mirror fetched through it, anyone could. */
  #isOpen(key: string): boolean {
    const slash = key.indexOf('/');
    if (slash === -1) return false;
    const upstream = key.slice(0, slash);
    return this.#options.probes.has(upstream) && !this.#options.guarded.has(upstream);
  }

  /**
   * One anonymous probe of `object` at a time wherever the flights reach (this process, the
   * workers of `serve`, the replicas). A process that waited for another's flight runs its own
   * after it (flights.ts): `recorded` first looks at what that probe left in the metadata store,
   * so the upstream is asked once, and that process's clients do not wait for a second probe.
   * So a probe's result is recorded (`record`) before its flight ends.
   */
  #probe<Recorded>(
    probe: AnonymousProbe, target: ProxiedTarget, object: ProbeObject, recorded: () => Promise<Recorded | undefined>, record: (result: ProbeResult) => Promise<void>,
  ): Promise<ProbeResult | Recorded> {
    const what = object.kind === 'tags' ? 'tags' : object.kind === 'blob' ? object.digest : object.reference;
    const key = `probe ${repositoryKey(target)} ${object.kind} ${what}`;
    const work = async (): Promise<ProbeResult | Recorded> => {
      // A look-up that fails (the metadata store down) costs a probe, never an answer.
      const earlier = await recorded().catch(() => undefined);
      if (earlier !== undefined) return earlier;
      const result = await probe.probeAnonymous(target.repository, object);
      await record(result);
      return result;
    };
    return this.#options.flights.run(key, work, { deadlineMs: this.#options.deadlineMs });
  }
}

function contentOf(request: AnonymousRequest): { kind: ContentKind; digest: Digest } | undefined {
  const digest = contentDigestOf(request);
  if (digest === undefined) return undefined;
  return { kind: request.endpoint === 'blobs' ? 'blob' : 'manifest', digest: parseDigest(digest) };
}

/** The digest a blob or manifest-by-digest request names, as given; undefined for tags and tag lists. */
function contentDigestOf(request: AnonymousRequest): string | undefined {
  if (request.endpoint === 'blobs') return request.reference;
  if (request.endpoint === 'manifests' && request.reference.includes(':')) return request.reference;
  return undefined;
}

function confirmationKey(repository: string, digest: string): string {
  return `${repository} ${digest}`;
}

function probeObjectOf(request: AnonymousRequest): ProbeObject {
  if (request.endpoint === 'blobs') return { kind: 'blob', digest: request.reference };
  if (request.endpoint === 'manifests') return { kind: 'manifest', reference: request.reference };
  return { kind: 'tags' };
}

function notFound(target: ProxiedTarget, endpoint: AnonymousRequest['endpoint'], reference: string): Error {
  if (endpoint === 'blobs') return new BlobUnknownError(`blob ${reference} is not known to this mirror in ${target.repository}`);
  if (endpoint === 'manifests') return new ManifestUnknownError(`manifest ${reference} is not known to this mirror in ${target.repository}`);
  return repositoryUnknown(target);
}

function repositoryUnknown(target: ProxiedTarget): NameUnknownError {
  return new NameUnknownError(`repository ${target.repository} is not known to this mirror`);
}
