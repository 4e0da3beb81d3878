/** Manifest media types a mirror must pass through untouched (OCI image-spec, Docker schema 2). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** The artifact manifest of image-spec 1.1 release candidates, still served by some registries. */
export const OCI_ARTIFACT_MANIFEST = 'application/vnd.oci.artifact.manifest.v1+json';

/** The only types a manifest is ever served with: anything else (text/html...) would be served on the mirror's origin. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST];

/** What the mirror asks upstreams for: every modern manifest type, so nothing is converted. */
export const UPSTREAM_MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

/** Largest manifest the mirror accepts; the distribution-spec recommends 4 MiB as the limit. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Whether a client's Accept header admits `mediaType`. No Accept at all, `*\/*` or `type/*`
 * accept everything that matches (RFC 9110 section 12.5.1); parameters and q-values are ignored
 * except that q=0 excludes.
 */
export function acceptsMediaType(acceptHeaders: string[], mediaType: string): boolean {
  const ranges = acceptHeaders.flatMap((header) => header.split(',')).map(parseMediaRange).filter((range) => range !== null);
  if (ranges.length === 0) return true;
  const [type] = mediaType.split('/');
  return ranges.some((range) => range.q > 0 && (range.type === '*/*' || range.type === mediaType || range.type === `${type}/*`));
}

function parseMediaRange(text: string): { type: string; q: number } | null {
  const [type, ...params] = text.split(';').map((part) => part.trim().toLowerCase());
  if (!type) return null;
  const qParam = params.find((param) => param.startsWith('q='));
  const q = qParam ? Number(qParam.slice(2)) : 1;
  return { type, q: Number.isNaN(q) ? 1 : q };
}

/** The media type of a manifest known to be good, or why it is not one. */
export type ManifestTypeVerdict = { mediaType: string } | { problem: string };

/**
 * The type to serve a manifest with: its own `mediaType` field when present, else the type it
 * was delivered with (`declared`: a Content-Type or a descriptor's mediaType; parameters and
 * case ignored, RFC 9110 section 8.3.1), else, for schema 2 JSON naming neither, its shape. It
 * must be one of MANIFEST_MEDIA_TYPES, and the field and `declared` must agree when both name
 * one. Generic `application/json` names none: some registries send it for every manifest.
 */
export function manifestMediaType(bytes: Uint8Array, declared: string | undefined): ManifestTypeVerdict {
  const parsed = parseJsonObject(bytes);
  if (parsed === undefined) return { problem: 'is not a JSON object' };
  const own = typeof parsed.mediaType === 'string' ? parsed.mediaType : undefined;
  const sent = declared === undefined ? undefined : mediaTypeEssence(declared);
  const given = sent === '' || sent === 'application/json' ? undefined : sent;
  const named = own ?? given;
  if (named === undefined) return shapeType(parsed);
  if (!MANIFEST_MEDIA_TYPES.includes(named.toLowerCase())) return { problem: `has type ${quoted(named)}, which is not a manifest media type` };
  if (own !== undefined && given !== undefined && given !== own.toLowerCase()) {
    return { problem: `was sent as ${quoted(given)} but names itself ${quoted(own)}` };
  }
  return { mediaType: named.toLowerCase() };
}

/** `type/subtype` without parameters, lower-cased. */
export function mediaTypeEssence(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

/** The manifest's type from its `mediaType` field or shape, for manifests that came without one. */
export function mediaTypeFromManifest(bytes: Uint8Array): string | undefined {
  const verdict = manifestMediaType(bytes, undefined);
  return 'mediaType' in verdict ? verdict.mediaType : undefined;
}

function shapeType(parsed: Record<string, unknown>): ManifestTypeVerdict {
  if (parsed.schemaVersion === 2 && Array.isArray(parsed.manifests)) return { mediaType: OCI_INDEX };
  if (parsed.schemaVersion === 2 && Array.isArray(parsed.layers) && typeof parsed.config === 'object') return { mediaType: OCI_MANIFEST };
  return { problem: 'names no media type and is not shaped like a schema 2 manifest' };
}

function parseJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** For messages: JSON-quoted, so control characters and odd bytes are shown, never emitted. */
function quoted(text: string): string {
  return JSON.stringify(text.slice(0, 100));
}
