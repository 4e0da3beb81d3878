/**
 * Pulls one image into the cache through the same service the HTTP routes use (Puller): the
 * same routing, auth, in-flight deduplication, digest checks and tag records as a client pull.
 * A blob is read to its end because its stream ends only once the download is verified and
 * published (pull-through/blob-fetch.ts); a blob already cached is not read at all, so warming
 * a warm image costs manifest lookups only.
 */
import pLimit from 'p-limit';
import { parseDigest } from '../domain/digest.js';
import type { ManifestReference } from '../domain/reference.js';
import type { Puller } from '../pull-through/puller.js';
import type { BlobStore } from '../store/blob-store.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { formatImage, parseImageReference, resolveImage, type ResolvedImage } from './image-reference.js';
import { walkImage, type Descriptor, type Platform } from './image-walk.js';

export interface WarmDependencies {
  puller: Puller;
  blobStore: BlobStore;
  router: UpstreamRouter;
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
    const top = await deps.puller.manifest(image, topReference(image), []);
    result.digest = top.digest;
    const contents = await walkImage(top, (child) => deps.puller.manifest(image, { kind: 'digest', digest: parseDigest(child.digest) }, []), filter);
    result.platforms = contents.platforms;
    result.blobs = contents.blobs.length;
    const pending: Descriptor[] = [];
    for (const blob of contents.blobs) {
      if ((await deps.blobStore.size(parseDigest(blob.digest))) === undefined) pending.push(blob);
      else result.cachedBytes += blob.size;
    }
    progress.addTotal(pending.reduce((sum, blob) => sum + blob.size, 0));
    const limit = pLimit(BLOBS_AT_ONCE);
    await Promise.all(pending.map((blob) => limit(() => pullBlob(deps.puller, image, blob, progress, result))));
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

function topReference(image: ResolvedImage): ManifestReference {
  // A digest names exact bytes; a tag beside it is only a label (docker's rule too).
  return image.digest ? { kind: 'digest', digest: image.digest } : { kind: 'tag', tag: image.tag! };
}

async function pullBlob(puller: Puller, image: ResolvedImage, blob: Descriptor, progress: WarmProgress, result: WarmResult): Promise<void> {
  const answer = await puller.blob(image, parseDigest(blob.digest));
  if (answer.origin === 'cache') {
    // Another image of this run (or a server on the same cache) fetched it meanwhile.
    answer.release();
    result.cachedBytes += answer.size;
    progress.advance(answer.size);
    return;
  }
  for await (const chunk of answer.open(0, answer.size - 1)) {
    const length = (chunk as Buffer).byteLength;
    result.fetchedBytes += length;
    progress.advance(length);
  }
}
