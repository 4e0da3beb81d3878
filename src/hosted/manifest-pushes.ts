/**
 * Manifest writes to hosted repositories (distribution-spec "Pushing Manifests", "Deleting
 * Manifests", "Deleting Tags"). A pushed manifest is validated (domain/manifest.ts), refused
 * while content it references is not in the repository (one MANIFEST_BLOB_UNKNOWN per missing
 * digest; the `subject` may point at nothing), then stored in its exact bytes, linked, indexed
 * as retained, and tagged when pushed by tag. Cached blobs it references become retained: the
 * LRU must not evict a layer a hosted image needs.
 *
 * Deleting by digest unlinks the manifest and drops the tags pointing at it; deleting a tag
 * drops just the tag. Bytes go with the next garbage collection if nothing else holds them.
 */
import { parseDigest } from '../domain/digest.js';
import { DigestInvalidError, ManifestBlobUnknownError, ManifestUnknownError, NameUnknownError } from '../domain/errors.js';
import { parseManifest, type ParsedManifest } from '../domain/manifest.js';
import { parseManifestReference, type ManifestReference } from '../domain/reference.js';
import type { HostedTarget } from '../domain/target.js';
import type { HostedContent } from './hosted-content.js';
import { manifestRecord, requiredReferences } from './manifest-record.js';
import { pushEvent, type EventSink, type PushRequest } from './push-events.js';

export interface PushedManifest {
  digest: string;
  /** The subject's digest, for the OCI-Subject header. */
  subject?: string;
}

export class ManifestPushes {
  constructor(private readonly hosted: HostedContent, private readonly events: EventSink) {}

  async put(target: HostedTarget, referenceText: string, bytes: Buffer, contentType: string | undefined, by: PushRequest): Promise<PushedManifest> {
    const reference = parseManifestReference(referenceText);
    const parsed = parseManifest(bytes, contentType, { digestAlgorithm: reference.kind === 'digest' ? reference.digest.algorithm : 'sha256' });
    if (reference.kind === 'digest' && parsed.digest !== reference.digest.value) {
      throw new DigestInvalidError(`the manifest's digest is ${parsed.digest}, not ${reference.digest.value}`);
    }
    await this.#requireReferences(target, parsed);
    await this.#store(target, parsed, bytes);
    const tag = reference.kind === 'tag' ? reference.tag : undefined;
    if (tag !== undefined) {
      await this.hosted.stores.metadata.tags.set(target.repository, tag, { digest: parsed.digest, mediaType: parsed.mediaType, size: parsed.size, checkedAt: Date.now() });
    }
    const change = { action: 'push' as const, repository: target.repository, digest: parsed.digest, mediaType: parsed.mediaType, size: parsed.size, ...(tag === undefined ? {} : { tag }) };
    this.events.publish(pushEvent(change, 'manifests', by));
    return { digest: parsed.digest, ...(parsed.subject ? { subject: parsed.subject.digest } : {}) };
  }

  async delete(target: HostedTarget, referenceText: string, by: PushRequest): Promise<void> {
    const reference = parseManifestReference(referenceText);
    const deleted = reference.kind === 'tag' ? await this.#deleteTag(target, reference.tag) : await this.#deleteManifest(target, reference);
    if (deleted === undefined) {
      const exists = await this.hosted.exists(target.repository);
      throw exists ? new ManifestUnknownError(`manifest ${referenceText} is not in ${target.repository}`) : new NameUnknownError(`repository ${target.repository} is not known to this registry`);
    }
    this.events.publish(pushEvent({ action: 'delete', repository: target.repository, digest: deleted, ...(reference.kind === 'tag' ? { tag: reference.tag } : {}) }, 'manifests', by));
  }

  /**
   * Every required reference must be in the repository: blobs linked and held, child manifests
   * linked and recorded. They are marked used first, so a garbage collection running now keeps
   * them, or has removed them already and the check fails (garbage-collect.ts).
   */
  async #requireReferences(target: HostedTarget, parsed: ParsedManifest): Promise<void> {
    await this.hosted.stores.metadata.blobs.touch(parsed.references.map((reference) => reference.digest), Date.now());
    const missing: string[] = [];
    for (const reference of requiredReferences(parsed)) {
      const present = reference.kind === 'manifest'
        ? await this.hosted.hasManifest(target.repository, reference.digest)
        : (await this.hosted.blobSize(target.repository, parseDigest(reference.digest))) !== undefined;
      if (!present) missing.push(reference.digest);
    }
    if (missing.length > 0) throw new ManifestBlobUnknownError(missing);
  }

  async #store(target: HostedTarget, parsed: ParsedManifest, bytes: Buffer): Promise<void> {
    await this.hosted.stores.manifests.write(parseDigest(parsed.digest), bytes, parsed.mediaType, manifestRecord(parsed));
    await this.hosted.add(target.repository, parsed.digest, parsed.size);
    await this.hosted.retain(parsed.references.map((reference) => reference.digest));
  }

  /** The tag's digest when it existed. */
  async #deleteTag(target: HostedTarget, tag: string): Promise<string | undefined> {
    const { tags } = this.hosted.stores.metadata;
    const record = await tags.get(target.repository, tag);
    if (!record || !(await tags.delete(target.repository, tag))) return undefined;
    return record.digest;
  }

  async #deleteManifest(target: HostedTarget, reference: Extract<ManifestReference, { kind: 'digest' }>): Promise<string | undefined> {
    const digest = reference.digest.value;
    if (!(await this.hosted.hasManifest(target.repository, digest))) return undefined;
    const { tags, links } = this.hosted.stores.metadata;
    for (const tag of await this.hosted.tagsPointingAt(target.repository, digest)) await tags.delete(target.repository, tag);
    await links.remove(target.repository, digest);
    return digest;
  }
}
