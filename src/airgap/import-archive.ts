/**
 * `import`: an OCI image layout archive into the cache. Blobs are verified and stored while the
 * archive streams by (oci-archive-reader.ts); then, for every image index.json names, its
 * manifests are stored (digest checked, media type from the manifest or its descriptor) and, when
 * every blob it needs is in the cache, its tag is restored from the ref.name annotation with
 * checkedAt = now. Running it twice changes nothing: stores are content-addressed and tag writes
 * are upserts.
 */
import type { Readable } from 'node:stream';
import { digestOf, parseDigest } from '../domain/digest.js';
import { ManifestInvalidError, NameUnknownError } from '../domain/errors.js';
import { manifestMediaType, MAX_MANIFEST_BYTES } from '../domain/media-types.js';
import { repositoryKey } from '../domain/target.js';
import type { TagStore } from '../metadata/metadata-store.js';
import type { ManifestStore, StoredManifest } from '../storage/manifest-store.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { formatImage, parseImageReference, resolveImage } from './image-reference.js';
import { walkImage, type Descriptor } from './image-walk.js';
import { REF_NAME_ANNOTATION } from './oci-archive-writer.js';
import { readOciArchive, storeSmallBlob, type ArchiveContents, type ReadTargets } from './oci-archive-reader.js';

export interface ImportTargets extends ReadTargets {
  manifests: ManifestStore;
  metadata: { tags: Pick<TagStore, 'set'> };
  router: UpstreamRouter;
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
  images: ImportedImage[];
  blobsStored: number;
  blobsAlreadyPresent: number;
  bytesStored: number;
  /** Archive-level problems: corrupt blobs, a missing index.json. */
  failures: string[];
  warnings: string[];
}

export async function importOciArchive(input: Readable, targets: ImportTargets): Promise<ImportResult> {
  const archive = await readOciArchive(input, targets);
  const result: ImportResult = { images: [], blobsStored: 0, blobsAlreadyPresent: 0, bytesStored: archive.storedBytes, failures: [...archive.failures], warnings: [] };
  if (!archive.index) {
    result.failures.push('the archive has no index.json: it is not an OCI image layout');
    return result;
  }
  if (!archive.layoutSeen) result.warnings.push('the archive has no oci-layout file; reading it as an OCI image layout anyway');
  const manifests = new ArchiveManifests(archive, targets);
  for (const entry of indexEntries(archive.index)) result.images.push(await importImage(entry, manifests, targets, result.warnings));
  await manifests.storeRemainingBlobs();
  // Manifests share the content store with blobs: the counts are of blobs only.
  const blobs = [...archive.stored].filter((digest) => !manifests.seen.has(digest));
  result.blobsAlreadyPresent = blobs.filter((digest) => archive.present.has(digest)).length;
  result.blobsStored = blobs.length - result.blobsAlreadyPresent + manifests.smallStored.count;
  result.bytesStored += manifests.smallStored.bytes;
  return result;
}

function indexEntries(index: Buffer): Descriptor[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(index.toString('utf8'));
  } catch {
    throw new ManifestInvalidError('index.json is not JSON');
  }
  const manifests = parsed !== null && typeof parsed === 'object' ? (parsed as { manifests?: unknown }).manifests : undefined;
  if (!Array.isArray(manifests)) throw new ManifestInvalidError('index.json has no manifests list');
  for (const [position, entry] of manifests.entries()) {
    if (entry === null || typeof entry !== 'object' || typeof (entry as { digest?: unknown }).digest !== 'string') {
      throw new ManifestInvalidError(`index.json manifests[${position}] is not a descriptor with a digest`);
    }
  }
  return manifests as Descriptor[];
}

async function importImage(entry: Descriptor, manifests: ArchiveManifests, targets: ImportTargets, warnings: string[]): Promise<ImportedImage> {
  const refName = entry.annotations?.[REF_NAME_ANNOTATION];
  const image: ImportedImage = { name: refName ?? entry.digest, digest: entry.digest };
  try {
    const top = await manifests.get(entry);
    if (!top) throw new ManifestInvalidError(`manifest ${entry.digest} is not in the archive`);
    const contents = await walkImage(top, (child) => manifests.get(child));
    for (const child of contents.missing) warnings.push(`${image.name}: child manifest ${child.digest} is not in the archive`);
    const absent = await manifests.absentBlobs(contents.blobs);
    await manifests.storeSmallBlobs(contents.blobs);
    for (const manifest of contents.manifests) await manifests.store(manifest);
    if (absent.length > 0) throw new ManifestInvalidError(`blobs missing or corrupt: ${absent.join(', ')}; tag not restored`);
    if (refName) image.tag = await restoreTag(refName, top, targets, warnings);
  } catch (error) {
    image.error = (error as Error).message;
  }
  return image;
}

async function restoreTag(refName: string, top: StoredManifest, targets: ImportTargets, warnings: string[]): Promise<string | undefined> {
  // A bare tag (`latest`, as some tools write it) names no repository: nothing to key it under.
  if (!/[/:@]/.test(refName)) {
    warnings.push(`ref.name ${JSON.stringify(refName)} names no repository; its manifest is stored by digest only`);
    return undefined;
  }
  let image;
  try {
    image = resolveImage(parseImageReference(refName), targets.router);
  } catch (error) {
    if (!(error instanceof NameUnknownError)) throw error;
    warnings.push(`${refName}: ${error.message}; its manifests and blobs are stored, its tag is not`);
    return undefined;
  }
  if (image.tag === undefined) return undefined;
  const record = { digest: top.digest, mediaType: top.mediaType, size: top.bytes.byteLength, checkedAt: Date.now() };
  await targets.metadata.tags.set(repositoryKey(image), image.tag, record);
  return formatImage({ ...image, digest: undefined });
}

/** Manifests by digest: from the archive's small blobs, spilled blobs, or the cache itself. */
class ArchiveManifests {
  private readonly used = new Set<string>();
  /** Every digest served as a manifest, from memory or from the content store. */
  readonly seen = new Set<string>();
  readonly smallStored = { count: 0, bytes: 0 };

  constructor(private readonly archive: ArchiveContents, private readonly targets: ImportTargets) {}

  async get(descriptor: Descriptor): Promise<StoredManifest | undefined> {
    const digest = parseDigest(descriptor.digest);
    const bytes = this.archive.small.get(digest.value) ?? (await this.spilled(descriptor));
    this.seen.add(digest.value);
    if (!bytes) return this.targets.manifests.read(digest);
    this.used.add(digest.value);
    const mediaType = mediaTypeOf(bytes, descriptor);
    if (!mediaType) throw new ManifestInvalidError(`manifest ${digest.value} is not JSON`);
    return { digest: digest.value, mediaType, bytes };
  }

  async store(manifest: StoredManifest): Promise<void> {
    const digest = parseDigest(manifest.digest);
    if (await this.targets.manifests.read(digest)) return;
    await this.targets.manifests.write(digest, manifest.bytes, manifest.mediaType);
  }

  /** Blobs of `descriptors` that are neither in the cache nor verified in memory. */
  async absentBlobs(descriptors: Descriptor[]): Promise<string[]> {
    const absent: string[] = [];
    for (const descriptor of descriptors) {
      if (this.archive.stored.has(descriptor.digest) || this.archive.small.has(descriptor.digest)) continue;
      if ((await this.targets.content.stat(parseDigest(descriptor.digest))) === undefined) absent.push(descriptor.digest);
    }
    return absent;
  }

  /** The image's blobs that were kept in memory (configs) go into the blob store before its tag. */
  async storeSmallBlobs(descriptors: Descriptor[]): Promise<void> {
    for (const descriptor of descriptors) {
      const bytes = this.archive.small.get(descriptor.digest);
      if (bytes) await this.storeSmall(descriptor.digest, bytes);
    }
  }

  /** Small blobs that no manifest named as a child manifest go into the blob store. */
  async storeRemainingBlobs(): Promise<void> {
    for (const [digest, bytes] of this.archive.small) {
      if (!this.used.has(digest)) await this.storeSmall(digest, bytes);
    }
  }

  private async storeSmall(digest: string, bytes: Buffer): Promise<void> {
    if (!(await storeSmallBlob(parseDigest(digest), bytes, this.targets))) return;
    this.smallStored.count += 1;
    this.smallStored.bytes += bytes.byteLength;
  }

  /** A manifest that went to the content store because memory ran short (or was there already). */
  private async spilled(descriptor: Descriptor): Promise<Buffer | undefined> {
    if (!this.archive.stored.has(descriptor.digest) || descriptor.size > MAX_MANIFEST_BYTES) return undefined;
    const digest = parseDigest(descriptor.digest);
    const bytes = await this.targets.content.read(digest);
    return bytes && digestOf(bytes, digest.algorithm).value === digest.value ? bytes : undefined;
  }
}

/** The same rule as for pulls (domain/media-types.ts): a known manifest type, agreeing with its descriptor. */
function mediaTypeOf(bytes: Buffer, descriptor: Descriptor): string | undefined {
  const verdict = manifestMediaType(bytes, descriptor.mediaType || undefined);
  if ('problem' in verdict) throw new ManifestInvalidError(`manifest ${descriptor.digest} ${verdict.problem}`);
  return verdict.mediaType;
}
