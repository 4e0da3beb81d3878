/**
 * The manifests an import reads, by digest: from the archive's small blobs (kept in memory by
 * oci-archive-reader.ts), from blobs it spilled to the content store, or from the cache itself
 * (an archive that re-points tags to images already cached need not carry them). Stores what an
 * image needs before its tag is written: its manifests and the small blobs (configs) it uses.
 */
import { digestOf, parseDigest } from '../domain/digest.js';
import { ManifestInvalidError } from '../domain/errors.js';
import { manifestMediaType, MAX_MANIFEST_BYTES } from '../domain/media-types.js';
import type { ManifestStore, StoredManifest } from '../storage/manifest-store.js';
import type { Descriptor } from './image-walk.js';
import { storeSmallBlob, type ArchiveContents, type ReadTargets } from './oci-archive-reader.js';

export interface ManifestTargets extends ReadTargets {
  manifests: ManifestStore;
}

/** Manifests by digest: from the archive's small blobs, spilled blobs, or the cache itself. */
export class ArchiveManifests {
  private readonly used = new Set<string>();
  /** Every digest served as a manifest, from memory or from the content store. */
  readonly seen = new Set<string>();
  readonly smallStored = { count: 0, bytes: 0 };

  constructor(private readonly archive: ArchiveContents, private readonly targets: ManifestTargets) {}

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

  /**
   * Blobs of `descriptors` that are neither in the cache nor verified in memory: `missing` were
   * never stored (or were corrupt), `evicted` were stored from this archive and are gone again,
   * taken by the cache budget for the blobs that came after them.
   */
  async absentBlobs(descriptors: Descriptor[]): Promise<{ missing: string[]; evicted: string[] }> {
    const absent = { missing: [] as string[], evicted: [] as string[] };
    for (const descriptor of descriptors) {
      if (this.archive.small.has(descriptor.digest)) continue;
      if ((await this.targets.content.stat(parseDigest(descriptor.digest))) !== undefined) continue;
      (this.archive.stored.has(descriptor.digest) ? absent.evicted : absent.missing).push(descriptor.digest);
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

  /**
   * A manifest that went to the content store because memory ran short (or was there already).
   * Its stored size, not the descriptor's claim, decides whether it is read: any blob of the
   * archive can be named as a manifest, and reading a large one whole would hold it in memory.
   */
  private async spilled(descriptor: Descriptor): Promise<Buffer | undefined> {
    if (!this.archive.stored.has(descriptor.digest) || descriptor.size > MAX_MANIFEST_BYTES) return undefined;
    const digest = parseDigest(descriptor.digest);
    const stored = await this.targets.content.stat(digest);
    if (stored && stored.size > MAX_MANIFEST_BYTES) throw new ManifestInvalidError(`manifest ${digest.value} is ${stored.size} bytes, more than the ${MAX_MANIFEST_BYTES} a manifest may have`);
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
