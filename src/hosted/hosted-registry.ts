/**
 * The read side of hosted repositories (pull-through/registry-service.ts): manifests, blobs,
 * tag lists and referrers answered from the stores only, never from an upstream. Blob bodies are
 * the content store's, sent the way cached blobs are (sendfile, nginx X-Accel-Redirect), pinned
 * while they are read and counted as uses like any blob.
 */
import { resolveRange, type RangeRequest } from '../domain/byte-range.js';
import { parseDigest, type Digest } from '../domain/digest.js';
import { BlobUnknownError, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import type { ManifestReference } from '../domain/reference.js';
import type { HostedTarget } from '../domain/target.js';
import type { PageRequest } from '../metadata/metadata-store.js';
import type { BlobAnswer, ManifestAnswer, ReferrersAnswer, RegistryService, TagList } from '../pull-through/registry-service.js';
import type { HostedContent } from './hosted-content.js';
import { listReferrers } from './referrers.js';

export class HostedRegistry implements RegistryService<HostedTarget> {
  constructor(private readonly hosted: HostedContent) {}

  async manifest(target: HostedTarget, reference: ManifestReference, _accept: string[]): Promise<ManifestAnswer> {
    const { metadata, manifests } = this.hosted.stores;
    const digest = reference.kind === 'digest' ? reference.digest.value : (await metadata.tags.get(target.repository, reference.tag))?.digest;
    const manifest = digest !== undefined && (await metadata.links.has(target.repository, digest)) ? await manifests.read(parseDigest(digest)) : undefined;
    if (manifest) return { ...manifest, origin: 'cache' };
    throw await this.#unknown(target, new ManifestUnknownError(`manifest ${reference.kind === 'tag' ? reference.tag : reference.digest.value} is not in ${target.repository}`));
  }

  async blobSize(target: HostedTarget, digest: Digest): Promise<number> {
    const size = await this.hosted.blobSize(target.repository, digest);
    if (size === undefined) throw new BlobUnknownError(`blob ${digest.value} is not in ${target.repository}`);
    return size;
  }

  async blob(target: HostedTarget, digest: Digest, request?: RangeRequest): Promise<BlobAnswer> {
    const size = await this.blobSize(target, digest);
    const { budget, content } = this.hosted.stores;
    const range = resolveRange(request, size);
    const unpin = budget.use(digest.value, size);
    const body = await content.open(digest, { knownSize: size, range, allowRedirect: true }).catch((error: unknown) => {
      unpin();
      throw error;
    });
    if (!body) {
      unpin();
      budget.forget(digest.value);
      throw new BlobUnknownError(`blob ${digest.value} of ${target.repository} is missing from the content store`);
    }
    return { size, range, origin: 'cache', body, release: unpin };
  }

  /** Tags in code point order (distribution-spec "Listing Tags"); a Link when more follow. */
  async tagList(target: HostedTarget, page: PageRequest): Promise<TagList> {
    const tags = this.hosted.stores.metadata.tags;
    if (page.n === 0) return tagListBody(target, [], undefined);
    const listed = await tags.list(target.repository, page.n === undefined ? page : { ...page, n: page.n + 1 });
    if (listed.length === 0 && !(await this.hosted.exists(target.repository))) throw new NameUnknownError(`repository ${target.repository} is not known to this registry`);
    const more = page.n !== undefined && listed.length > page.n;
    const shown = more ? listed.slice(0, page.n) : listed;
    const link = more ? `</v2/${target.repository}/tags/list?n=${page.n}&last=${encodeURIComponent(shown.at(-1)!)}>; rel="next"` : undefined;
    return tagListBody(target, shown, link);
  }

  referrers(target: HostedTarget, digest: Digest, artifactType: string | undefined, page: PageRequest = {}): Promise<ReferrersAnswer> {
    return listReferrers(this.hosted.stores.metadata.manifests, target.repository, digest.value, artifactType, page);
  }

  /** NAME_UNKNOWN when the repository does not exist at all, else `error`. */
  async #unknown(target: HostedTarget, error: Error): Promise<Error> {
    return (await this.hosted.exists(target.repository)) ? error : new NameUnknownError(`repository ${target.repository} is not known to this registry`);
  }
}

function tagListBody(target: HostedTarget, tags: string[], link: string | undefined): TagList {
  return { body: Buffer.from(JSON.stringify({ name: target.repository, tags })), link, fromCache: false };
}
