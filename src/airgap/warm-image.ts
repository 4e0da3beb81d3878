/**
 * Pulls one image into the cache through the same service the HTTP routes use (the registry
 * service): the same routing, auth, shared downloads, digest checks, tag records and links as a
 * client pull. A blob being filled is followed to its end, which comes once the fill is verified;
 * warm returns once those fills are published too (pull-through/blob-download.ts). A blob already
 * cached is not read at all, so warming a warm image costs manifest lookups only.
 */
import type { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { parseDigest } from '../domain/digest.js';
import type { ManifestReference } from '../domain/reference.js';
import type { CacheBudget } from '../eviction/cache-budget.js';
import type { BlobDownloads } from '../pull-through/blob-downloads.js';
import type { BlobAnswer, RegistryService } from '../pull-through/registry-service.js';
import { followGrowingFile } from '../storage/growing-file.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { formatImage, parseImageReference, resolveImage, type ResolvedImage } from './image-reference.js';
import { walkImage, type Descriptor, type Platform } from './image-walk.js';

export interface WarmDependencies {
  registry: RegistryService;
  budget: Pick<CacheBudget, 'lookup'>;
  router: UpstreamRouter;
  /** Fills whose bytes were all read are waited for until they are published. */
  downloads: Pick<BlobDownloads, 'finishCommits'>;
}

/** What warm reports to its progress display. */
export interface WarmProgress {
  addTotal(bytes: number): void;
  advance(bytes: number): void;
}

export interface WarmResult {
  /** The full reference, or the text as given when it could not be parsed. */
  image: string;
  digest?: string;
  platforms: string[];
  blobs: number;
  fetchedBytes: number;
  cachedBytes: number;
  error?: string;
}

const BLOBS_AT_ONCE = 4;

export async function warmImage(deps: WarmDependencies, text: string, filter: Platform[] | undefined, progress: WarmProgress): Promise<WarmResult> {
  const result: WarmResult = { image: text, platforms: [], blobs: 0, fetchedBytes: 0, cachedBytes: 0 };
  try {
    const image = resolveImage(parseImageReference(text), deps.router);
    result.image = formatImage(image);
    const top = await deps.registry.manifest(image, topReference(image), []);
    result.digest = top.digest;
    const contents = await walkImage(top, (child) => deps.registry.manifest(image, { kind: 'digest', digest: parseDigest(child.digest) }, []), filter);
    result.platforms = contents.platforms;
    result.blobs = contents.blobs.length;
    const pending: Descriptor[] = [];
    for (const blob of contents.blobs) {
      if ((await deps.budget.lookup(blob.digest)) === undefined) pending.push(blob);
      else result.cachedBytes += blob.size;
    }
    progress.addTotal(pending.reduce((sum, blob) => sum + blob.size, 0));
    const limit = pLimit(BLOBS_AT_ONCE);
    await Promise.all(pending.map((blob) => limit(() => pullBlob(deps.registry, image, blob, progress, result))));
    await deps.downloads.finishCommits();
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

function topReference(image: ResolvedImage): ManifestReference {
  // A digest names exact bytes; a tag beside it is only a label (docker's rule too).
  return image.digest ? { kind: 'digest', digest: image.digest } : { kind: 'tag', tag: image.tag! };
}

async function pullBlob(registry: RegistryService, image: ResolvedImage, blob: Descriptor, progress: WarmProgress, result: WarmResult): Promise<void> {
  const answer = await registry.blob(image, parseDigest(blob.digest));
  const following = answer.body.kind === 'growing' ? followGrowingFile(answer.body.file, 0, answer.size === undefined ? Infinity : answer.size - 1) : undefined;
  if (answer.origin === 'cache' || !following) {
    // Cached already (another image of this run, or a server on the same cache, fetched it), or filled before it could be followed.
    if (answer.body.kind === 'stream') answer.body.stream.destroy();
    answer.release();
    const size = answer.size ?? blob.size;
    if (answer.origin === 'cache') result.cachedBytes += size;
    else result.fetchedBytes += size;
    progress.advance(size);
    return;
  }
  await countBytes(following, answer, progress, result);
}

async function countBytes(stream: Readable, answer: BlobAnswer, progress: WarmProgress, result: WarmResult): Promise<void> {
  try {
    for await (const chunk of stream) {
      const length = (chunk as Buffer).byteLength;
      result.fetchedBytes += length;
      progress.advance(length);
    }
  } finally {
    answer.release();
  }
}
