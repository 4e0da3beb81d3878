/** Manifest media types a mirror must pass through untouched (OCI image-spec, Docker schema 2). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

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

/** Reads the `mediaType` field of a manifest, for manifests fetched without a Content-Type. */
export function mediaTypeFromManifest(bytes: Uint8Array): string | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) as { mediaType?: unknown; manifests?: unknown };
    if (typeof parsed.mediaType === 'string') return parsed.mediaType;
    return Array.isArray(parsed.manifests) ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return undefined;
  }
}
