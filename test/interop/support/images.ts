/**
 * Image manifests, configs and indexes built from layers, kept as the exact bytes that get pushed
 * so every digest is known before the upstream sees it (OCI image-spec; Docker image manifest v2
 * schema 2 and manifest list).
 */
import { buildLayer, sha256Digest, type Layer } from './layers.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  inToto: 'application/vnd.in-toto+json',
} as const;

const CREATED = '2024-06-01T00:00:00Z';

export interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface ImageManifest {
  readonly kind: 'manifest';
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
  /** Config first, then layers. */
  readonly blobs: Blob[];
  readonly platform: Platform;
  readonly annotations?: Record<string, string>;
}

export interface ImageIndex {
  readonly kind: 'index';
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
  readonly manifests: ImageManifest[];
}

export type Image = ImageManifest | ImageIndex;

/** Registries store whatever bytes were pushed; indenting like many build tools do keeps that visible. */
export function jsonBlob(value: unknown): Blob {
  const bytes = Buffer.from(JSON.stringify(value, null, 3));
  return { bytes, digest: sha256Digest(bytes), size: bytes.length };
}

export interface ImageSpec {
  format: 'docker' | 'oci';
  platform: Platform;
  layers: Layer[];
  cmd?: string[];
  annotations?: Record<string, string>;
}

export function buildImage(spec: ImageSpec): ImageManifest {
  const oci = spec.format === 'oci';
  const config = jsonBlob({
    architecture: spec.platform.architecture,
    os: spec.platform.os,
    ...(spec.platform.variant ? { variant: spec.platform.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: spec.cmd ?? ['/bin/sh'], WorkingDir: '/' },
    created: CREATED,
    history: spec.layers.map((layer) => ({ created: CREATED, created_by: `/bin/sh -c #(nop) ADD file:${layer.diffId.slice(7, 23)} in / ` })),
    rootfs: { type: 'layers', diff_ids: spec.layers.map((layer) => layer.diffId) },
  });
  const manifest = {
    schemaVersion: 2,
    mediaType: oci ? MEDIA.ociManifest : MEDIA.dockerManifest,
    config: { mediaType: oci ? MEDIA.ociConfig : MEDIA.dockerConfig, size: config.size, digest: config.digest },
    layers: spec.layers.map((layer) => ({ mediaType: oci ? MEDIA.ociLayer : MEDIA.dockerLayer, size: layer.size, digest: layer.digest })),
    ...(oci && spec.annotations ? { annotations: spec.annotations } : {}),
  };
  const blobs = [config, ...spec.layers.map(({ bytes, digest, size }) => ({ bytes, digest, size }))];
  return { kind: 'manifest', mediaType: manifest.mediaType, ...jsonBlob(manifest), blobs, platform: spec.platform };
}

/**
 * A BuildKit-style attestation manifest: platform unknown/unknown, an in-toto layer, and the
 * annotations Docker Hub's official images carry to point at the image they describe.
 */
export function buildAttestation(subject: ImageManifest): ImageManifest {
  const statement = jsonBlob({
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://slsa.dev/provenance/v0.2',
    subject: [{ name: 'pkg:docker/image', digest: { sha256: subject.digest.slice(7) } }],
    predicate: { builder: { id: 'interop' }, buildType: 'https://mobyproject.org/buildkit@v1' },
  });
  const config = jsonBlob({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statement.digest] } });
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: config.digest, size: config.size },
    layers: [{ mediaType: MEDIA.inToto, digest: statement.digest, size: statement.size, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } }],
  };
  return {
    kind: 'manifest',
    mediaType: MEDIA.ociManifest,
    ...jsonBlob(manifest),
    blobs: [config, statement],
    platform: { architecture: 'unknown', os: 'unknown' },
    annotations: { 'vnd.docker.reference.digest': subject.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
  };
}

export function buildIndex(format: 'docker' | 'oci', manifests: ImageManifest[]): ImageIndex {
  const index = {
    schemaVersion: 2,
    mediaType: format === 'oci' ? MEDIA.ociIndex : MEDIA.dockerList,
    manifests: manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, ...(m.annotations ? { annotations: m.annotations } : {}), platform: m.platform })),
  };
  return { kind: 'index', mediaType: index.mediaType, ...jsonBlob(index), manifests };
}

/** Every distinct blob an image references, platform manifests included. */
export function blobsOf(image: Image): Blob[] {
  const all = image.kind === 'index' ? image.manifests.flatMap((m) => m.blobs) : image.blobs;
  return [...new Map(all.map((blob) => [blob.digest, blob])).values()];
}

export { buildLayer };

/**
 * What a client that pulls one platform of `image` must end up with: the image (index) itself,
 * then that platform's manifest, config and layers.
 */
export function platformContent(image: Image, architecture: string): string[] {
  const manifest = platformManifest(image, architecture);
  return [...new Set([image.digest, manifest.digest, ...manifest.blobs.map((blob) => blob.digest)])];
}

/** The manifest a single-platform client (dockerd, `ctr pull`) picks for `architecture`. */
export function platformManifest(image: Image, architecture: string): ImageManifest {
  if (image.kind === 'manifest') return image;
  const child = image.manifests.find((manifest) => manifest.platform.architecture === architecture);
  if (!child) throw new Error(`${image.digest} has no ${architecture} manifest`);
  return child;
}
