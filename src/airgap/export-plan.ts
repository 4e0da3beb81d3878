/**
 * Which images an export holds, read from the stores only (the upstream is never asked): a tag
 * through the tag store whatever its age, a digest directly. An image whose manifests or blobs
 * are not all held is left out with a reason, rather than written as an archive other tools
 * fail on half-way.
 */
import { parseDigest } from '../domain/digest.js';
import { BlobUnknownError, ManifestUnknownError } from '../domain/errors.js';
import { proxiedTarget, repositoryKey } from '../domain/target.js';
import type { TagStore } from '../metadata/metadata-store.js';
import type { ContentStore } from '../storage/content-store.js';
import type { ManifestStore, StoredManifest } from '../storage/manifest-store.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { formatImage, parseImageReference, resolveImage, type ResolvedImage } from './image-reference.js';
import { walkImage, type ImageContents } from './image-walk.js';

export interface ExportSources {
  metadata: { tags: Pick<TagStore, 'get' | 'entries'> };
  manifests: ManifestStore;
  content: Pick<ContentStore, 'stat'>;
  router: UpstreamRouter;
}

export interface ExportImage {
  /** Full reference, written as the org.opencontainers.image.ref.name annotation. */
  refName: string;
  top: StoredManifest;
  contents: ImageContents;
}

export interface ExportPlan {
  images: ExportImage[];
  failures: Array<{ image: string; error: string }>;
  /** Child manifests that were never warmed (an image warmed for some platforms only). */
  warnings: string[];
}

export async function planExport(sources: ExportSources, references: string[] | 'all'): Promise<ExportPlan> {
  const plan: ExportPlan = { images: [], failures: [], warnings: [] };
  const wanted = references === 'all' ? await everyTag(sources) : references.map((text) => ({ text, image: undefined }));
  for (const { text, image } of wanted) {
    try {
      const resolved = image ?? resolveImage(parseImageReference(text), sources.router);
      plan.images.push(await planImage(sources, resolved, plan.warnings));
    } catch (error) {
      plan.failures.push({ image: text, error: (error as Error).message });
    }
  }
  return plan;
}

/** Every proxied tag: metadata names them `<upstream>/<repository>` (domain/target.ts repositoryKey). */
async function everyTag(sources: ExportSources): Promise<Array<{ text: string; image: ResolvedImage }>> {
  const found: Array<{ text: string; image: ResolvedImage }> = [];
  for await (const entry of sources.metadata.tags.entries()) {
    const slash = entry.repository.indexOf('/');
    if (slash <= 0) continue;
    const image = { ...proxiedTarget(entry.repository.slice(0, slash), entry.repository.slice(slash + 1)), tag: entry.tag, digest: undefined };
    found.push({ text: formatImage(image), image });
  }
  return found.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

async function planImage(sources: ExportSources, image: ResolvedImage, warnings: string[]): Promise<ExportImage> {
  const refName = formatImage({ ...image, digest: image.tag === undefined ? image.digest : undefined });
  const digest = image.digest?.value ?? (await tagDigest(sources, image));
  const top = await sources.manifests.read(parseDigest(digest));
  if (!top) throw new ManifestUnknownError(`manifest ${digest} of ${refName} is not in the cache`);
  const contents = await walkImage(top, (child) => sources.manifests.read(parseDigest(child.digest)));
  for (const child of contents.missing) {
    const platform = child.platform ? ` (${child.platform.os}/${child.platform.architecture})` : '';
    warnings.push(`${refName}: manifest ${child.digest}${platform} is not cached and is left out of the archive`);
  }
  for (const blob of contents.blobs) {
    const stored = await sources.content.stat(parseDigest(blob.digest));
    if (stored === undefined) throw new BlobUnknownError(`blob ${blob.digest} of ${refName} is not in the cache`);
    if (stored.size !== blob.size) throw new BlobUnknownError(`cached blob ${blob.digest} has ${stored.size} bytes, its descriptor says ${blob.size}`);
  }
  return { refName, top, contents };
}

async function tagDigest(sources: ExportSources, image: ResolvedImage): Promise<string> {
  const record = await sources.metadata.tags.get(repositoryKey(image), image.tag!);
  if (!record) throw new ManifestUnknownError(`${formatImage(image)} is not in the cache (warm it first)`);
  return record.digest;
}
