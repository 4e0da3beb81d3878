/**
 * The registry service as clients that did not authenticate get it: the access policy
 * (access-policy.ts) wrapped around the pull-through service, so private upstream content never
 * reaches them. A check that could only say "unconfirmed" (the content was not held yet, so it
 * would be fetched through the requested repository) is settled once the answer shows where the
 * bytes come from: a fill through that very repository confirms itself; content that was cached,
 * or a fill through another repository joined, in the meantime is checked again (issue 12 item 2:
 * concurrent fills).
 */
import type { RangeRequest } from '../domain/byte-range.js';
import type { Digest } from '../domain/digest.js';
import { AnonymousAccessRefusedError } from '../domain/errors.js';
import { referenceText, type ManifestReference } from '../domain/reference.js';
import { repositoryKey, type ProxiedTarget } from '../domain/target.js';
import type { PageRequest } from '../metadata/metadata-store.js';
import type { AccessCheck, AccessPolicy } from './access-policy.js';
import type { BlobAnswer, BlobRequestOptions, ManifestAnswer, ManifestRequestOptions, ReferrersAnswer, RegistryService, RequestOptions, TagList } from './registry-service.js';

export class GuardedRegistry implements RegistryService {
  constructor(private readonly inner: RegistryService, private readonly policy: AccessPolicy) {}

  /**
   * As for blobs: with the repository's verdict fresh the check runs first; otherwise its probe
   * runs beside the fetch, so a cold image's manifest (and everything the client asks for after
   * it) waits for the slower of the two, not both. Nothing is answered before the check allowed
   * it, and the image's blobs are prefetched only then: a refused client costs the upstream this
   * one manifest at most, never the image.
   */
  async manifest(target: ProxiedTarget, reference: ManifestReference, accept: string[], options: ManifestRequestOptions = {}): Promise<ManifestAnswer> {
    const request = { endpoint: 'manifests', reference: referenceText(reference) } as const;
    if (await this.policy.knowsRepository(target)) {
      const check = await this.policy.check(target, request);
      return this.#manifestConfirmed(target, reference, check, await this.inner.manifest(target, reference, accept, options));
    }
    const checking = this.policy.check(target, request);
    checking.catch(() => {});
    const answering = this.inner.manifest(target, reference, accept, { ...options, prefetchOnceAllowed: checking });
    answering.catch(() => {});
    const check = await checking;
    return this.#manifestConfirmed(target, reference, check, await answering);
  }

  /** A digest the check could not vouch for is confirmed unless the upstream served it through this repository just now. */
  async #manifestConfirmed(target: ProxiedTarget, reference: ManifestReference, check: AccessCheck, answer: ManifestAnswer): Promise<ManifestAnswer> {
    if (check === 'unconfirmed' && reference.kind === 'digest' && answer.origin !== 'upstream') {
      await this.policy.confirm(target, { kind: 'manifest', digest: reference.digest });
    }
    return answer;
  }

  async blobSize(target: ProxiedTarget, digest: Digest, options?: RequestOptions): Promise<number> {
    const check = await this.policy.check(target, { endpoint: 'blobs', reference: digest.value });
    const size = await this.inner.blobSize(target, digest, options);
    // The upstream answered for this repository, unless the blob turned up here meanwhile.
    if (check === 'unconfirmed') await this.policy.check(target, { endpoint: 'blobs', reference: digest.value });
    return size;
  }

  /** blob()'s warm path: allowed on what this process remembers, and held. */
  blobHeldInMemory(target: ProxiedTarget, digest: Digest): boolean {
    return this.policy.allowedFromMemory(target, { endpoint: 'blobs', reference: digest.value }) && this.inner.blobHeldInMemory?.(target, digest) === true;
  }

  /**
   * While the repository's verdict is fresh, the check costs no upstream request and runs first.
   * Otherwise a miss is fetched without the mirror's credentials, and the upstream serving it so
   * through this repository is the probe: what an anonymous HEAD of the blob would learn,
   * without a second token and a HEAD before the first byte (issue 16); a refusal answers as a
   * refused probe does, and nothing was fetched with the mirror's credentials for it. Bytes that
   * came otherwise (cached, or a fetch another client started) are checked as before.
   */
  async blob(target: ProxiedTarget, digest: Digest, range?: RangeRequest, options: BlobRequestOptions = {}): Promise<BlobAnswer> {
    const request = { endpoint: 'blobs', reference: digest.value } as const;
    // The warm path: allowed on what this process remembers, without a lookup (access-policy.ts).
    if (this.policy.allowedFromMemory(target, request)) return this.inner.blob(target, digest, range, options);
    if (await this.policy.knowsRepository(target)) {
      const check = await this.policy.check(target, request);
      return this.#confirmed(target, digest, check, await this.inner.blob(target, digest, range, options));
    }
    let answer: BlobAnswer;
    try {
      answer = await this.inner.blob(target, digest, range, { ...options, withoutCredentials: true });
    } catch (error) {
      if (error instanceof AnonymousAccessRefusedError) throw await this.policy.refusedAnonymously(target);
      throw error;
    }
    if (answer.anonymous && answer.origin !== 'cache' && answer.via === repositoryKey(target)) {
      // Recorded once the first bytes are out: the verdict's metadata write would hold them up.
      setImmediate(() => void this.policy.servedAnonymously(target, digest));
      return answer;
    }
    let check: AccessCheck;
    try {
      check = await this.policy.check(target, request);
    } catch (error) {
      answer.release();
      throw error;
    }
    return this.#confirmed(target, digest, check, answer);
  }

  /** Settles an 'unconfirmed' check by where the answer's bytes come from (see the file's header). */
  async #confirmed(target: ProxiedTarget, digest: Digest, check: AccessCheck, answer: BlobAnswer): Promise<BlobAnswer> {
    if (check === 'allowed' || (answer.origin !== 'cache' && answer.via === repositoryKey(target))) return answer;
    try {
      await this.policy.confirm(target, { kind: 'blob', digest });
    } catch (error) {
      answer.release();
      throw error;
    }
    return answer;
  }

  async tagList(target: ProxiedTarget, page: PageRequest, options?: RequestOptions): Promise<TagList> {
    await this.policy.check(target, { endpoint: 'tags', reference: 'list' });
    return this.inner.tagList(target, page, options);
  }

  async referrers(target: ProxiedTarget, digest: Digest, artifactType: string | undefined, page?: PageRequest, options?: RequestOptions): Promise<ReferrersAnswer> {
    await this.policy.check(target, { endpoint: 'referrers', reference: digest.value });
    return this.inner.referrers(target, digest, artifactType, page, options);
  }
}
