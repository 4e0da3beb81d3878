/**
 * Deterministic test images built in memory: the same options always give the same bytes and
 * digests, so tests can hard-code nothing and still compare exactly. Layer bytes are the
 * AES-256-CTR keystream under a key derived from (seed, layer index): pseudo-random, seeded, and
 * produced natively at memory speed (50 MB in a few tens of milliseconds), unlike a JS PRNG loop.
 * Layers are opaque to a mirror, so they are not real tarballs.
 */
import { createCipheriv, createHash } from 'node:crypto';
import type { FakeRegistry } from './fake-registry.js';

export type ImageFlavour = 'docker' | 'oci';

export const MEDIA_TYPES = {
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface TestBlob extends Descriptor {
  bytes: Buffer;
}

export interface TestImage {
  kind: 'image';
  platform: Platform;
  config: TestBlob;
  layers: TestBlob[];
  /** The manifest itself: bytes, digest, size, mediaType. */
  manifest: TestBlob;
}

export interface TestIndex {
  kind: 'index';
  images: TestImage[];
  manifest: TestBlob;
}

export interface MakeImageOptions {
  /** Layer sizes in bytes. */
  layers: number[];
  /** Any integer or string; different seeds give different layers, config and digests. */
  seed: number | string;
  /** Default 'oci'. */
  mediaTypes?: ImageFlavour;
  /** Default linux/amd64. */
  platform?: Platform;
  /** OCI only: makes this manifest a referrer of `subject` (distribution-spec "Listing Referrers"). */
  subject?: Descriptor;
  /** OCI only: the manifest's artifactType. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** `size` pseudo-random bytes determined by `key`. */
export function seededBytes(size: number, key: string): Buffer {
  const material = createHash('sha256').update(key).digest();
  const cipher = createCipheriv('aes-256-ctr', material, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(size));
}

export function blobOf(bytes: Buffer, mediaType: string): TestBlob {
  return { mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, bytes };
}

export function makeImage(options: MakeImageOptions): TestImage {
  const flavour = options.mediaTypes ?? 'oci';
  const types = MEDIA_TYPES[flavour];
  if (flavour === 'docker' && (options.subject || options.artifactType)) {
    throw new Error('makeImage: subject and artifactType exist only in OCI manifests; use mediaTypes: "oci"');
  }
  const platform = options.platform ?? { architecture: 'amd64', os: 'linux' };
  const layers = options.layers.map((size, index) => blobOf(seededBytes(size, `${options.seed}/layer/${index}`), types.layer));
  const configJson = {
    ...platform,
    created: '2024-01-01T00:00:00Z',
    config: { Env: [`SEED=${options.seed}`] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
  };
  const config = blobOf(Buffer.from(JSON.stringify(configJson)), types.config);
  const manifestJson = {
    schemaVersion: 2,
    mediaType: types.manifest,
    ...(options.artifactType === undefined ? {} : { artifactType: options.artifactType }),
    config: descriptorOf(config),
    layers: layers.map(descriptorOf),
    ...(options.subject === undefined ? {} : { subject: descriptorOf(options.subject) }),
    ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
  };
  return { kind: 'image', platform, config, layers, manifest: blobOf(Buffer.from(JSON.stringify(manifestJson)), types.manifest) };
}

/** A Docker manifest list or an OCI image index over `images`, each entry carrying its platform. */
export function makeIndex(images: TestImage[], flavour: ImageFlavour = 'oci'): TestIndex {
  const mediaType = MEDIA_TYPES[flavour].index;
  const indexJson = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((image) => ({ ...descriptorOf(image.manifest), platform: image.platform })),
  };
  return { kind: 'index', images, manifest: blobOf(Buffer.from(JSON.stringify(indexJson)), mediaType) };
}

/**
 * Adds every blob (linked to `repo`) and manifest of `image` to the registry; children of an
 * index are stored by digest only, the top-level manifest also under `tag` (when given).
 * Returns the top-level manifest digest.
 */
export function pushImage(registry: FakeRegistry, repo: string, tag: string | undefined, image: TestImage | TestIndex): string {
  if (image.kind === 'index') {
    for (const child of image.images) pushImage(registry, repo, undefined, child);
  } else {
    for (const blob of [image.config, ...image.layers]) registry.addBlob(blob.bytes, repo);
  }
  return registry.putManifest(repo, image.manifest.bytes, image.manifest.mediaType, tag);
}

function descriptorOf(descriptor: Descriptor): Descriptor {
  return { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
}
