/**
 * From a validated pushed manifest (domain/manifest.ts) to what the metadata store keeps of it:
 * the record behind referrers and garbage collection, and the content that must already be in
 * the repository before the manifest is accepted (distribution-spec "Push": otherwise one
 * MANIFEST_BLOB_UNKNOWN per missing digest; the subject is exempt).
 */
import type { ParsedManifest, ReferencedContent } from '../domain/manifest.js';
import type { ManifestRecord } from '../metadata/metadata-store.js';

export function manifestRecord(parsed: ParsedManifest): ManifestRecord {
  const record: ManifestRecord = {
    digest: parsed.digest,
    mediaType: parsed.mediaType,
    size: parsed.size,
    references: parsed.references.map((reference) => reference.digest),
  };
  if (parsed.subject) record.subject = parsed.subject.digest;
  if (parsed.artifactType !== undefined) record.artifactType = parsed.artifactType;
  if (parsed.annotations !== undefined) record.annotations = parsed.annotations;
  return record;
}

/** References whose absence refuses the manifest: all but foreign layers with URLs. */
export function requiredReferences(parsed: ParsedManifest): ReferencedContent[] {
  return parsed.references.filter((reference) => reference.mustExist);
}
