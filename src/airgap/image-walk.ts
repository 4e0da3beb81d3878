/**
 * Everything an image consists of: its top manifest, the platform manifests of an index (OCI
 * image-spec "Image Index"; Docker manifest lists have the same shape), and the config and
 * layer blobs of every image manifest. Warm, export and import walk images the same way and
 * differ only in where a child manifest comes from.
 *
 * Without a platform filter everything an index lists is taken, including the attestation
 * manifests buildkit adds with platform unknown/unknown; with a filter only matching entries.
 */
import { parseDigest, type Digest } from '../domain/digest.js';
import { BadRequestError, ManifestInvalidError } from '../domain/errors.js';
import type { StoredManifest } from '../storage/manifest-store.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ImageContents {
  /** Every manifest, the top one first, each once. */
  manifests: StoredManifest[];
  /** Config and layer blobs, each digest once. */
  blobs: Descriptor[];
  /** `os/arch[/variant]` of each platform manifest taken (empty for a single manifest). */
  platforms: string[];
  /** Children the source did not have (export of an image warmed for some platforms only). */
  missing: Descriptor[];
}

/** Returns a child manifest, or undefined when it is not available. */
export type ManifestSource = (descriptor: Descriptor) => Promise<StoredManifest | undefined>;

export function parsePlatformFilter(text: string | undefined): Platform[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((entry) => {
    const [os, architecture, variant, ...rest] = entry.trim().split('/');
    if (!os || !architecture || rest.length > 0) {
      throw new BadRequestError(`expected --platform as os/arch[/variant][,...], got ${JSON.stringify(entry)}`);
    }
    return variant ? { os, architecture, variant } : { os, architecture };
  });
}

export function platformMatches(filter: Platform[] | undefined, platform: Platform | undefined): boolean {
  if (!filter) return true;
  if (!platform) return false;
  return filter.some((wanted) =>
    wanted.os === platform.os &&
    wanted.architecture === platform.architecture &&
    // arm64's variant is v8 when not stated (OCI image-spec "Platform Variants").
    (wanted.variant === undefined || wanted.variant === (platform.variant ?? (platform.architecture === 'arm64' ? 'v8' : undefined))));
}

export function platformText(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Walks `top` and its children; blobs are listed, not fetched. */
export async function walkImage(top: StoredManifest, source: ManifestSource, filter?: Platform[]): Promise<ImageContents> {
  const contents: ImageContents = { manifests: [], blobs: [], platforms: [], missing: [] };
  const seenBlobs = new Set<string>();
  const seenManifests = new Set<string>();
  // Children asked for once each: an index may list one child many times, and reading a child
  // (from an archive, the cache, an upstream) costs far more than this set.
  const askedChildren = new Set<string>();
  const visit = async (manifest: StoredManifest): Promise<void> => {
    if (seenManifests.has(manifest.digest)) return;
    seenManifests.add(manifest.digest);
    contents.manifests.push(manifest);
    const parsed = parseManifest(manifest);
    for (const blob of parsed.blobs) {
      if (seenBlobs.has(blob.digest)) continue;
      seenBlobs.add(blob.digest);
      contents.blobs.push(blob);
    }
    for (const child of parsed.children.filter((entry) => platformMatches(filter, entry.platform))) {
      if (askedChildren.has(child.digest)) continue;
      askedChildren.add(child.digest);
      const childManifest = await source(child);
      if (!childManifest) {
        contents.missing.push(child);
        continue;
      }
      if (child.platform && child.platform.os !== 'unknown') contents.platforms.push(platformText(child.platform));
      await visit(childManifest);
    }
  };
  await visit(top);
  return contents;
}

interface ParsedManifest {
  children: Descriptor[];
  blobs: Descriptor[];
}

/** The descriptors a manifest points at: child manifests (index) or config and layers. */
export function parseManifest(manifest: StoredManifest): ParsedManifest {
  let json: { manifests?: unknown; config?: unknown; layers?: unknown; blobs?: unknown };
  try {
    json = JSON.parse(manifest.bytes.toString('utf8')) as typeof json;
  } catch {
    throw new ManifestInvalidError(`manifest ${manifest.digest} is not JSON`);
  }
  if (Array.isArray(json.manifests)) return { children: json.manifests.map((entry) => descriptor(entry, manifest)), blobs: [] };
  const blobs = [json.config, ...(Array.isArray(json.layers) ? json.layers : []), ...(Array.isArray(json.blobs) ? json.blobs : [])]
    .filter((entry) => entry !== undefined)
    .map((entry) => descriptor(entry, manifest));
  return { children: [], blobs };
}

function descriptor(entry: unknown, parent: StoredManifest): Descriptor {
  const value = entry as Partial<Descriptor> | null;
  if (!value || typeof value.digest !== 'string' || typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new ManifestInvalidError(`manifest ${parent.digest} has a descriptor without a valid digest and size`);
  }
  parseDigest(value.digest);
  return { ...value, mediaType: typeof value.mediaType === 'string' ? value.mediaType : '', digest: value.digest, size: value.size } as Descriptor;
}

export function digestOfDescriptor(descriptor: Descriptor): Digest {
  return parseDigest(descriptor.digest);
}
