/**
 * Validation of a pushed manifest (distribution-spec "Pushing Manifests") and what the metadata
 * needs from it: the content it references (which must exist before it is accepted: blobs and
 * child manifests), its `subject`, its `artifactType` and its annotations (distribution-spec
 * "Listing Referrers").
 *
 * Accepted types: OCI image manifest and index (image-spec v1.1, with `subject`, `artifactType`,
 * `annotations`), Docker image manifest v2 schema 2 and manifest list, and the OCI artifact
 * manifest of the distribution-spec 1.1 release candidates (still pushed by older ORAS).
 * Anything else, Docker schema 1 included, is refused with MANIFEST_INVALID, as distribution
 * does (`UnmarshalManifest`: "unsupported manifest media type"): UNSUPPORTED maps to 405, which
 * clients read as "this registry takes no pushes at all".
 *
 * The media type is the request's Content-Type (parameters ignored: distribution-spec "Pushing
 * Manifests", the registry SHOULD ignore them); when the manifest has a `mediaType` field, the
 * two must agree. Without a Content-Type, the manifest's own `mediaType` decides.
 */
import { createHash } from 'node:crypto';
import type { DigestAlgorithm } from './digest.js';
import { ManifestInvalidError } from './errors.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import {
  checkPlatform, describe, invalid, isJsonObject, optionalAnnotations, optionalArtifactType, parseDescriptor, quote, requireArray,
  requireMediaType, type Descriptor, type JsonObject,
} from './manifest-descriptor.js';

/** OCI artifact manifest (distribution-spec 1.1.0-rc1..rc3, image-spec artifact.md, later withdrawn). */
export const OCI_ARTIFACT_MANIFEST = 'application/vnd.oci.artifact.manifest.v1+json';

export const PUSHABLE_MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST];

/** Layers that may live elsewhere (`urls`), which a registry does not require to have been pushed. */
const FOREIGN_LAYER_TYPES = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** A manifest over the limit: distribution-spec "Pushing Manifests" asks for 413 Payload Too Large. */
export class ManifestTooLargeError extends ManifestInvalidError {
  constructor(readonly size: number) {
    super(`manifest invalid: ${size} bytes is over the ${MAX_MANIFEST_BYTES}-byte limit`);
  }
}

/** Content a manifest points at, which must be present before the manifest is accepted. */
export interface ReferencedContent {
  digest: string;
  size: number;
  mediaType: string;
  /** Where it must exist: a child manifest of an index, or a blob (config, layer, artifact blob). */
  kind: 'blob' | 'manifest';
  /** False for foreign layers with `urls`: distribution accepts those without the blob. */
  mustExist: boolean;
}

export interface ParsedManifest {
  /** The canonical media type (one of PUSHABLE_MANIFEST_TYPES). */
  mediaType: string;
  /** Digest of the exact bytes, with the algorithm asked for (the reference's, when pushed by digest). */
  digest: string;
  size: number;
  /** Config, then layers/blobs/children, in document order, each digest once. Never the subject. */
  references: ReferencedContent[];
  /** May point at nothing yet (distribution-spec "Push": the registry MUST accept that). */
  subject?: Descriptor;
  /** `artifactType`, or for an image manifest without one its config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface Contents {
  references: ReferencedContent[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ParseManifestOptions {
  /** Algorithm of the digest to compute; default sha256. */
  digestAlgorithm?: DigestAlgorithm;
}

/** Throws ManifestInvalidError (or ManifestTooLargeError) naming the offending field. */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, options: ParseManifestOptions = {}): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new ManifestTooLargeError(bytes.length);
  const document = parseJsonObject(bytes);
  const mediaType = resolveMediaType(contentType, document.mediaType);
  const contents = CONTENTS_BY_TYPE[mediaType]!(document);
  const algorithm = options.digestAlgorithm ?? 'sha256';
  const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  return { mediaType, digest, size: bytes.length, ...withoutUndefined(contents) };
}

/** The media type from a Content-Type header: parameters dropped, lower-cased (RFC 9110 section 8.3.1). */
export function contentTypeMediaType(header: string | undefined): string | undefined {
  const type = header?.split(';')[0]?.trim().toLowerCase();
  return type ? type : undefined;
}

const MANIFEST_TEXT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseJsonObject(bytes: Uint8Array): JsonObject {
  let document: unknown;
  try {
    // ignoreBOM keeps a byte order mark, which JSON.parse then refuses: the stored bytes are
    // what clients get, and Go's encoding/json (docker, containerd) cannot parse it (RFC 8259 section 8.1).
    document = JSON.parse(MANIFEST_TEXT.decode(bytes));
  } catch (error) {
    throw new ManifestInvalidError(`manifest invalid: not UTF-8 JSON (${(error as Error).message.slice(0, 200)})`);
  }
  if (!isJsonObject(document)) throw invalid('manifest', `expected a JSON object, got ${describe(document)}`);
  return document;
}

function resolveMediaType(contentType: string | undefined, field: unknown): string {
  const fromHeader = contentTypeMediaType(contentType);
  if (field !== undefined) requireMediaType(field, 'mediaType');
  const fromField = typeof field === 'string' ? field.toLowerCase() : undefined;
  const mediaType = fromHeader ?? fromField;
  if (mediaType === undefined) throw invalid('Content-Type', 'missing, and the manifest has no mediaType field');
  if (!PUSHABLE_MANIFEST_TYPES.includes(mediaType)) {
    throw invalid('Content-Type', `unsupported manifest media type ${quote(mediaType)}; accepted: ${PUSHABLE_MANIFEST_TYPES.join(', ')}`);
  }
  if (fromField !== undefined && fromField !== mediaType) {
    throw invalid('mediaType', `${quote(String(field))} does not match the Content-Type ${quote(mediaType)}`);
  }
  return mediaType;
}

const CONTENTS_BY_TYPE: Record<string, (document: JsonObject) => Contents> = {
  [OCI_MANIFEST]: (document) => imageManifest(document, true),
  [DOCKER_MANIFEST]: (document) => imageManifest(document, false),
  [OCI_INDEX]: (document) => imageIndex(document, true),
  [DOCKER_MANIFEST_LIST]: (document) => imageIndex(document, false),
  [OCI_ARTIFACT_MANIFEST]: artifactManifest,
};

/** Image manifest: config and layers are blobs (image-spec manifest.md; Docker schema 2). */
function imageManifest(document: JsonObject, oci: boolean): Contents {
  requireSchemaVersion2(document);
  requireFieldForDocker(document, oci, DOCKER_MANIFEST);
  if (document.manifests !== undefined) throw invalid('manifests', 'an image manifest has no manifests field (is this an index?)');
  const config = parseDescriptor(document.config, 'config');
  const layers = requireArray(document.layers, 'layers').map((layer, index) => parseDescriptor(layer, `layers[${index}]`));
  const references = [config, ...layers].map((descriptor) => blobReference(descriptor));
  if (!oci) return { references };
  const artifactType = optionalArtifactType(document.artifactType, 'artifactType') ?? config.mediaType;
  return { references, artifactType, ...subjectAndAnnotations(document) };
}

/** Index or manifest list: its entries are manifests (image-spec image-index.md). */
function imageIndex(document: JsonObject, oci: boolean): Contents {
  requireSchemaVersion2(document);
  requireFieldForDocker(document, oci, DOCKER_MANIFEST_LIST);
  if (document.config !== undefined || document.layers !== undefined) {
    throw invalid(document.config !== undefined ? 'config' : 'layers', 'an index has no config or layers (is this an image manifest?)');
  }
  const entries = requireArray(document.manifests, 'manifests').map((entry, index) => {
    const descriptor = parseDescriptor(entry, `manifests[${index}]`);
    checkPlatform((entry as JsonObject).platform, `manifests[${index}].platform`);
    return descriptor;
  });
  const references = entries.map(childReference);
  if (!oci) return { references };
  return { references, artifactType: optionalArtifactType(document.artifactType, 'artifactType'), ...subjectAndAnnotations(document) };
}

/** Artifact manifest: `artifactType` is required, `blobs` optional; no schemaVersion field. */
function artifactManifest(document: JsonObject): Contents {
  if (document.mediaType === undefined) throw invalid('mediaType', `required in an artifact manifest (${OCI_ARTIFACT_MANIFEST})`);
  const artifactType = optionalArtifactType(document.artifactType, 'artifactType');
  if (artifactType === undefined) throw invalid('artifactType', 'required in an artifact manifest');
  const blobs = document.blobs === undefined ? [] : requireArray(document.blobs, 'blobs').map((blob, index) => parseDescriptor(blob, `blobs[${index}]`));
  return { references: blobs.map((descriptor) => blobReference(descriptor)), artifactType, ...subjectAndAnnotations(document) };
}

function subjectAndAnnotations(document: JsonObject): Pick<Contents, 'subject' | 'annotations'> {
  const subject = document.subject === undefined ? undefined : parseDescriptor(document.subject, 'subject');
  return { subject, annotations: optionalAnnotations(document.annotations, 'annotations') };
}

function requireSchemaVersion2(document: JsonObject): void {
  if (document.schemaVersion !== 2) throw invalid('schemaVersion', `expected 2, got ${describe(document.schemaVersion)}`);
}

/** Docker schema 2 documents always carry their mediaType (Docker "Image Manifest Version 2, Schema 2"). */
function requireFieldForDocker(document: JsonObject, oci: boolean, mediaType: string): void {
  if (!oci && document.mediaType === undefined) throw invalid('mediaType', `required in a Docker manifest (${mediaType})`);
}

function blobReference(descriptor: Descriptor): ReferencedContent {
  const foreign = FOREIGN_LAYER_TYPES.has(descriptor.mediaType) && (descriptor.urls?.length ?? 0) > 0;
  return { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType, kind: 'blob', mustExist: !foreign };
}

/**
 * An index entry of a manifest type must have been pushed as a manifest. Entries of any other
 * type can only exist as blobs, since this registry refuses such types as manifests.
 */
function childReference(descriptor: Descriptor): ReferencedContent {
  const kind = PUSHABLE_MANIFEST_TYPES.includes(descriptor.mediaType) ? 'manifest' : 'blob';
  return { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType, kind, mustExist: true };
}

function withoutUndefined(contents: Contents): Contents {
  const seen = new Set<string>();
  const references = contents.references.filter((reference) => !seen.has(reference.digest) && seen.add(reference.digest));
  const result: Contents = { references };
  if (contents.subject !== undefined) result.subject = contents.subject;
  if (contents.artifactType !== undefined) result.artifactType = contents.artifactType;
  if (contents.annotations !== undefined) result.annotations = contents.annotations;
  return result;
}
