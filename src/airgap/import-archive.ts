/**
 * `import`: an OCI image layout archive into the cache. Blobs are verified and stored while the
 * archive streams by (oci-archive-reader.ts); then index.json is read twice, entry by entry
 * (index-json-entries.ts): once to check all of it, so a malformed index changes no tag, and
 * once to import. For every image it names, its manifests are stored (digest checked, media type
 * from the manifest or its descriptor) and, when every blob it needs is in the cache, its tag is
 * restored from the ref.name annotation with checkedAt = now, in batches of one transaction each
 * (import-tags.ts). Memory holds one batch and one entry of the index at a time, whatever the
 * number of tags.
 *
 * A tag the cache already has pointing to other content is left alone unless `retag` is given
 * (`registry-mirror import --retag`): an archive must not silently move a tag (issue 12).
 * Running an import twice changes nothing: stores are content-addressed and tag writes upserts.
 */
import type { Readable } from 'node:stream';
import { ManifestInvalidError } from '../domain/errors.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { ArchiveManifests, type ManifestTargets } from './archive-manifests.js';
import { walkImage, type Descriptor } from './image-walk.js';
import { countIndexEntries, indexEntries } from './index-json-entries.js';
import { TagBatch, type TagTargets } from './import-tags.js';
import { REF_NAME_ANNOTATION } from './oci-archive-writer.js';
import { readOciArchive, type ArchiveContents } from './oci-archive-reader.js';

export interface ImportTargets extends ManifestTargets {
  metadata: TagTargets['metadata'];
  router: UpstreamRouter;
}

export interface ImportOptions {
  /** Re-point tags the cache has to the archive's content (`--retag`). */
  retag?: boolean;
}

export interface ImportedImage {
  /** The ref.name annotation, or the digest when there is none. */
  name: string;
  digest: string;
  /** The tag key restored, e.g. docker.io/library/alpine:3.20; undefined when none was. */
  tag?: string;
  error?: string;
}

export interface ImportResult {
  /** The first MAX_LISTED images, and failed ones up to MAX_LISTED more: what a report can show. */
  images: ImportedImage[];
  /** Every image index.json names, and how many of them failed. */
  imageCount: number;
  failedCount: number;
  tagsRestored: number;
  blobsStored: number;
  blobsAlreadyPresent: number;
  bytesStored: number;
  /** Archive-level problems: corrupt blobs, a missing index.json. */
  failures: string[];
  warnings: string[];
}

/** Images listed one by one in a result; beyond it they are counted. */
export const MAX_LISTED = 1_000;

export async function importOciArchive(input: Readable, targets: ImportTargets, options: ImportOptions = {}): Promise<ImportResult> {
  const archive = await readOciArchive(input, targets);
  try {
    return await importContents(archive, targets, options);
  } finally {
    await archive.close();
  }
}

async function importContents(archive: ArchiveContents, targets: ImportTargets, options: ImportOptions): Promise<ImportResult> {
  const result: ImportResult = {
    images: [], imageCount: 0, failedCount: 0, tagsRestored: 0, blobsStored: 0, blobsAlreadyPresent: 0,
    bytesStored: archive.storedBytes, failures: [...archive.failures], warnings: [],
  };
  if (!archive.index) throw new ManifestInvalidError('the archive has no index.json: it is not an OCI image layout');
  if (!archive.layoutSeen) result.warnings.push('the archive has no oci-layout file; reading it as an OCI image layout anyway');
  await countIndexEntries(archive.index);
  const manifests = new ArchiveManifests(archive, targets);
  const warn = boundedList(result.warnings);
  const images = new ImageImports(manifests, warn);
  const tags = new TagBatch(targets, { retag: options.retag === true, warn });
  for await (const entry of indexEntries(archive.index)) {
    const image = await importImage(entry, images, tags);
    addImage(result, image);
  }
  result.tagsRestored = await tags.flush();
  warn.finish();
  await manifests.storeRemainingBlobs();
  // Manifests share the content store with blobs: the counts are of blobs only.
  const blobs = [...archive.stored].filter((digest) => !manifests.seen.has(digest));
  result.blobsAlreadyPresent = blobs.filter((digest) => archive.present.has(digest)).length;
  result.blobsStored = blobs.length - result.blobsAlreadyPresent + manifests.smallStored.count;
  result.bytesStored += manifests.smallStored.bytes;
  return result;
}

/** Adds lines to `list` up to MAX_LISTED, then counts them; `finish` adds the count. */
function boundedList(list: string[]): ((text: string) => void) & { finish(): void } {
  let dropped = 0;
  const add = (text: string) => {
    if (list.length < MAX_LISTED) list.push(text);
    else dropped += 1;
  };
  return Object.assign(add, { finish: () => void (dropped > 0 && list.push(`... and ${dropped} more warnings`)) });
}

function addImage(result: ImportResult, image: ImportedImage): void {
  result.imageCount += 1;
  if (image.error) result.failedCount += 1;
  if (result.images.length < MAX_LISTED || (image.error && result.images.length < 2 * MAX_LISTED)) result.images.push(image);
}

async function importImage(entry: Descriptor, images: ImageImports, tags: TagBatch): Promise<ImportedImage> {
  const refName = entry.annotations?.[REF_NAME_ANNOTATION];
  const image: ImportedImage = { name: refName ?? entry.digest, digest: entry.digest };
  try {
    const top = await images.store(entry);
    if (refName) image.tag = await tags.add(refName, top);
  } catch (error) {
    image.error = (error as Error).message;
  }
  return image;
}

/**
 * Stores each distinct image once: an archive of many tags names few images many times, and
 * walking and storing one again would only repeat the same lookups. Remembers digests and
 * error texts, not manifests.
 */
class ImageImports {
  readonly #done = new Map<string, ImageSummary | { error: string }>();

  constructor(private readonly manifests: ArchiveManifests, private readonly warn: (text: string) => void) {}

  async store(entry: Descriptor): Promise<ImageSummary> {
    let done = this.#done.get(entry.digest);
    if (done === undefined) {
      done = await this.#storeImage(entry).catch((error: Error) => ({ error: error.message }));
      this.#done.set(entry.digest, done);
    }
    if ('error' in done) throw new ManifestInvalidError(done.error);
    return done;
  }

  async #storeImage(entry: Descriptor): Promise<ImageSummary> {
    const top = await this.manifests.get(entry);
    if (!top) throw new ManifestInvalidError(`manifest ${entry.digest} is not in the archive`);
    const name = entry.annotations?.[REF_NAME_ANNOTATION] ?? entry.digest;
    const contents = await walkImage(top, (child) => this.manifests.get(child));
    for (const child of contents.missing) this.warn(`${name}: child manifest ${child.digest} is not in the archive`);
    const absent = await this.manifests.absentBlobs(contents.blobs);
    await this.manifests.storeSmallBlobs(contents.blobs);
    for (const manifest of contents.manifests) await this.manifests.store(manifest);
    if (absent.missing.length > 0) throw new ManifestInvalidError(`blobs missing or corrupt: ${absent.missing.join(', ')}; tag not restored`);
    if (absent.evicted.length > 0) throw new ManifestInvalidError(`blobs evicted by the cache budget during the import: ${absent.evicted.join(', ')}; tag not restored (raise cache.maxBytes above the images' size)`);
    // walkImage lists each manifest and blob once.
    const stored = [...contents.manifests.map((manifest) => manifest.digest), ...contents.blobs.map((blob) => blob.digest)];
    return { digest: top.digest, mediaType: top.mediaType, size: top.bytes.byteLength, contents: stored };
  }
}

interface ImageSummary {
  digest: string;
  mediaType: string;
  size: number;
  /** Every manifest and blob of the image that is stored: what its repository is linked to. */
  contents: readonly string[];
}
