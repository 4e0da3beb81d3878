/**
 * What the metadata store records about a manifest besides its bytes (ManifestRecord): its media
 * type, the digests it references (config, layers, child manifests: the garbage collector's
 * mark phase), its subject, artifact type and annotations (distribution-spec "Listing
 * Referrers"). Read from the manifest's JSON; a manifest that does not parse references nothing.
 */
import type { ManifestRecord } from '../metadata/metadata-store.js';

interface ManifestJson {
  config?: { digest?: unknown; mediaType?: unknown };
  layers?: unknown;
  manifests?: unknown;
  blobs?: unknown;
  subject?: { digest?: unknown };
  artifactType?: unknown;
  annotations?: unknown;
}

export function describeManifest(digest: string, mediaType: string, bytes: Buffer): ManifestRecord {
  const record: ManifestRecord = { digest, mediaType, size: bytes.byteLength, references: [] };
  const json = parse(bytes);
  if (!json) return record;
  const descriptors = [json.config, ...list(json.layers), ...list(json.manifests), ...list(json.blobs)];
  record.references = [...new Set(descriptors.map(digestOf).filter((value) => value !== undefined))];
  const subject = digestOf(json.subject);
  if (subject) record.subject = subject;
  const artifactType = typeof json.artifactType === 'string' ? json.artifactType : typeof json.config?.mediaType === 'string' ? json.config.mediaType : undefined;
  if (artifactType) record.artifactType = artifactType;
  if (isStringRecord(json.annotations)) record.annotations = json.annotations;
  return record;
}

function parse(bytes: Buffer): ManifestJson | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' ? (value as ManifestJson) : undefined;
  } catch {
    return undefined;
  }
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function digestOf(descriptor: unknown): string | undefined {
  const digest = (descriptor as { digest?: unknown } | null | undefined)?.digest;
  return typeof digest === 'string' ? digest : undefined;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((entry) => typeof entry === 'string');
}
