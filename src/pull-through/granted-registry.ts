/**
 * The pull-through service as one authenticated client gets it under access rules: content by
 * digest (blobs, manifests by digest) passes content-grants.ts first, so a digest the cache
 * holds through a repository the rules keep from the client is not served under a name they
 * may pull. Tags, tag lists and referrers come from the named repository itself and pass
 * through. One is made per request (http/routes/registry-api.ts): it carries the user's name.
 */
import type { RangeRequest } from '../domain/byte-range.js';
import type { Digest } from '../domain/digest.js';
import type { ManifestReference } from '../domain/reference.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { PageRequest } from '../metadata/metadata-store.js';
import type { Content, ContentGrants } from './content-grants.js';
import type { BlobAnswer, BlobRequestOptions, ManifestAnswer, ManifestRequestOptions, ReferrersAnswer, RegistryService, RequestOptions, TagList } from './registry-service.js';

export class GrantedRegistry implements RegistryService {
  constructor(private readonly inner: RegistryService, private readonly grants: ContentGrants, private readonly user: string) {}

  async manifest(target: ProxiedTarget, reference: ManifestReference, accept: string[], options?: ManifestRequestOptions): Promise<ManifestAnswer> {
    if (reference.kind !== 'digest') return this.inner.manifest(target, reference, accept, options);
    const content: Content = { kind: 'manifest', digest: reference.digest };
    const check = await this.grants.check(this.user, target, content);
    const answer = await this.inner.manifest(target, reference, accept, options);
    if (check === 'unlinked') await this.grants.settle(this.user, target, content, answer);
    return answer;
  }

  async blobSize(target: ProxiedTarget, digest: Digest, options?: RequestOptions): Promise<number> {
    const content: Content = { kind: 'blob', digest };
    const check = await this.grants.check(this.user, target, content);
    const size = await this.inner.blobSize(target, digest, options);
    if (check === 'unlinked') await this.grants.settleSize(this.user, target, content);
    return size;
  }

  async blob(target: ProxiedTarget, digest: Digest, range?: RangeRequest, options?: BlobRequestOptions): Promise<BlobAnswer> {
    // The warm path: granted on what this process remembers, without a lookup.
    if (this.grants.grantedFromMemory(target, digest)) return this.inner.blob(target, digest, range, options);
    const content: Content = { kind: 'blob', digest };
    const check = await this.grants.check(this.user, target, content);
    const answer = await this.inner.blob(target, digest, range, options);
    if (check === 'allowed') return answer;
    try {
      await this.grants.settle(this.user, target, content, answer);
    } catch (error) {
      answer.release();
      throw error;
    }
    return answer;
  }

  tagList(target: ProxiedTarget, page: PageRequest, options?: RequestOptions): Promise<TagList> {
    return this.inner.tagList(target, page, options);
  }

  referrers(target: ProxiedTarget, digest: Digest, artifactType: string | undefined, page?: PageRequest, options?: RequestOptions): Promise<ReferrersAnswer> {
    return this.inner.referrers(target, digest, artifactType, page, options);
  }
}
