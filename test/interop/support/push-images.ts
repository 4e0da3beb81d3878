/**
 * Images for push tests, built here (no internet) and handed to each client in the form it can
 * load: a `docker save` archive (docker load, podman load), an OCI image layout directory
 * (skopeo `oci:`) and the same layout as a tar (`ctr images import`). Layers come from
 * layers.ts, so every digest is known before a client sees the image.
 */
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { buildAttestation, buildImage, buildIndex, jsonBlob, type Image, type ImageIndex, type ImageManifest } from './images.js';
import { buildLayer, type LayerFile } from './layers.js';

const AMD64 = { architecture: 'amd64', os: 'linux' };
const ARM64 = { architecture: 'arm64', os: 'linux', variant: 'v8' };

/** A layer of one text file and one random file of `size` bytes, distinct per name. */
export function pushLayer(name: string, size: number) {
  const files: LayerFile[] = [{ path: `etc/${name}.conf`, text: `name=${name}\n` }, { path: `usr/lib/${name}/data.bin`, randomBytes: size, seed: `push:${name}:${size}` }];
  return buildLayer(files);
}

/** A single-platform image; images sharing `base` share their first layer (what cross-repository mounts are for). */
export function singleImage(format: 'docker' | 'oci', name: string, base = pushLayer('base', 48 * 1024)): ImageManifest {
  return buildImage({ format, platform: AMD64, layers: [base, pushLayer(`${name}-app`, 6 * 1024 * 1024), pushLayer(`${name}-conf`, 1024)], cmd: ['/usr/bin/true'] });
}

/** amd64 and arm64 images with a BuildKit-style attestation manifest each, in an OCI index. */
export function multiPlatformIndex(name: string): ImageIndex {
  const base = pushLayer(`${name}-base`, 32 * 1024);
  const images = [AMD64, ARM64].map((platform) => buildImage({ format: 'oci', platform, layers: [base, pushLayer(`${name}-${platform.architecture}`, 64 * 1024)] }));
  return buildIndex('oci', [...images, ...images.map(buildAttestation)]);
}

/** `docker save` format: manifest.json, the config, and uncompressed layer tars (docker load, podman load). */
export async function writeDockerArchive(file: string, image: ImageManifest, repoTag: string): Promise<void> {
  const [config, ...layers] = image.blobs;
  const configName = `${config!.digest.slice(7)}.json`;
  const layerNames = layers.map((layer) => `${layer.digest.slice(7)}/layer.tar`);
  const manifest = [{ Config: configName, RepoTags: [repoTag], Layers: layerNames }];
  await writeTar(file, [
    { name: configName, bytes: config!.bytes },
    ...layers.map((layer, index) => ({ name: layerNames[index]!, bytes: gunzipSync(layer.bytes) })),
    { name: 'manifest.json', bytes: Buffer.from(JSON.stringify(manifest)) },
  ]);
}

/**
 * An OCI image layout (image-spec image-layout.md) holding `image` under `tag`. `imageName`
 * also sets `io.containerd.image.name`, the name `ctr images import` gives it.
 */
export function writeOciLayout(dir: string, image: Image, tag: string, imageName?: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const blob of layoutBlobs(image)) writeFileSync(join(dir, 'blobs', 'sha256', blob.digest.slice(7)), blob.bytes);
  writeFileSync(join(dir, 'index.json'), layoutIndex(image, tag, imageName));
}

/** The layout of writeOciLayout as one tar (an OCI archive). */
export async function writeOciArchive(file: string, image: Image, tag: string, imageName?: string): Promise<void> {
  await writeTar(file, [
    { name: 'oci-layout', bytes: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) },
    { name: 'index.json', bytes: layoutIndex(image, tag, imageName) },
    ...layoutBlobs(image).map((blob) => ({ name: `blobs/sha256/${blob.digest.slice(7)}`, bytes: blob.bytes })),
  ]);
}

/** The layout's index.json: one entry, named by tag (and for containerd by image name). */
function layoutIndex(image: Image, tag: string, imageName?: string): Buffer {
  const annotations = { 'org.opencontainers.image.ref.name': tag, ...(imageName ? { 'io.containerd.image.name': imageName } : {}) };
  const manifests = [{ mediaType: image.mediaType, digest: image.digest, size: image.size, annotations }];
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}

/** Manifests and blobs of an image, each digest once. */
export function layoutBlobs(image: Image): Array<{ digest: string; bytes: Buffer }> {
  const manifests: ImageManifest[] = image.kind === 'index' ? image.manifests : [image];
  const all = [image, ...(image.kind === 'index' ? manifests : []), ...manifests.flatMap((manifest) => manifest.blobs)];
  return [...new Map(all.map((blob) => [blob.digest, { digest: blob.digest, bytes: blob.bytes }])).values()];
}

/** The OCI "empty" config `{}` an artifact manifest uses (image-spec manifest.md "Guidance for an Empty Descriptor"). */
export const EMPTY_CONFIG = jsonBlob({});

async function writeTar(file: string, entries: Array<{ name: string; bytes: Buffer }>): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  pack.pipe(out);
  for (const entry of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({ name: entry.name, mtime: new Date(1_717_200_000_000) }, entry.bytes, (error) => (error ? reject(error) : resolve())));
  }
  pack.finalize();
  await done;
}
