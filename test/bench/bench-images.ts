/**
 * The benchmark's own images, too big to build in memory like the interop catalog:
 *
 *   myorg/app:v1     OCI manifest, layers ~120 MiB + ~30 MiB + ~3 MiB (the shape of a real app image)
 *   myorg/huge:v1    one ~1 GiB layer (the memory scenario; only when asked for)
 *
 * Layer bodies are AES-CTR keystream (incompressible, so no transport or disk compression can
 * flatter a result), written to `<dir>/blobs/sha256/<hex>` while being hashed, then streamed
 * into the upstream with a monolithic upload (distribution-spec "POST then PUT ?digest=").
 * The files stay on disk: nginx serves them as the ceiling for warm blob serving.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { jsonBlob, MEDIA } from '../interop/support/images.js';
import { HUB_PASSWORD, HUB_SERVICE, HUB_USER } from '../interop/support/token-server.js';

const MiB = 1024 ** 2;
const CHUNK = 4 * MiB;
const REQUEST_TIMEOUT_MS = 300_000;

export interface BlobFile {
  readonly digest: string;
  readonly size: number;
  readonly file: string;
}

export interface BenchImage {
  readonly repo: string;
  readonly tag: string;
  readonly manifestDigest: string;
  readonly manifestBytes: Buffer;
  readonly config: BlobFile;
  /** Layers in manifest order. */
  readonly layers: BlobFile[];
  /** Manifest + config + layers: what a client downloads for one pull. */
  readonly totalBytes: number;
}

/** The ~120/30/3 MiB layer sizes; odd byte counts so nothing lines up with buffer sizes by luck. */
export const APP_LAYER_SIZES = { large: 120 * MiB + 4_321, medium: 30 * MiB + 987, small: 3 * MiB + 123 } as const;
export const HUGE_LAYER_SIZE = 1024 * MiB;

export async function writeRandomBlob(dir: string, seed: string, size: number): Promise<BlobFile> {
  const blobDir = join(dir, 'blobs', 'sha256');
  mkdirSync(blobDir, { recursive: true });
  const key = createHash('sha256').update(seed).digest();
  const temp = join(blobDir, `.tmp-${key.toString('hex')}`);
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), Buffer.alloc(16));
  const hash = createHash('sha256');
  const out = createWriteStream(temp);
  const zeros = Buffer.alloc(CHUNK);
  for (let written = 0; written < size; written += CHUNK) {
    const chunk = cipher.update(zeros.subarray(0, Math.min(CHUNK, size - written)));
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
  const hex = hash.digest('hex');
  const file = join(blobDir, hex);
  renameSync(temp, file);
  return { digest: `sha256:${hex}`, size, file };
}

export async function buildImage(dir: string, repo: string, tag: string, layerSizes: number[]): Promise<BenchImage> {
  const layers: BlobFile[] = [];
  for (const [i, size] of layerSizes.entries()) layers.push(await writeRandomBlob(dir, `${repo}:${tag}#${i}`, size));
  const configBlob = jsonBlob({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/usr/bin/app'] },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
  });
  const configFile = join(dir, 'blobs', 'sha256', configBlob.digest.slice(7));
  writeFileSync(configFile, configBlob.bytes);
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((layer) => ({ mediaType: MEDIA.ociLayer, digest: layer.digest, size: layer.size })),
  });
  const config = { digest: configBlob.digest, size: configBlob.size, file: configFile };
  const totalBytes = manifest.size + config.size + layers.reduce((sum, layer) => sum + layer.size, 0);
  return { repo, tag, manifestDigest: manifest.digest, manifestBytes: manifest.bytes, config, layers, totalBytes };
}

/** Pushes an image with the hub's push credentials, streaming every blob from its file. */
export async function pushImage(registryUrl: string, tokenUrl: string, image: BenchImage): Promise<void> {
  const authorization = await pushToken(tokenUrl, image.repo);
  for (const blob of [image.config, ...image.layers]) await pushBlob(registryUrl, authorization, image.repo, blob);
  const response = await fetch(`${registryUrl}/v2/${image.repo}/manifests/${image.tag}`, {
    method: 'PUT',
    headers: { authorization, 'content-type': MEDIA.ociManifest },
    body: image.manifestBytes,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (response.status !== 201) throw new Error(`PUT manifest ${image.repo}:${image.tag}: ${response.status} ${await response.text()}`);
}

async function pushToken(tokenUrl: string, repo: string): Promise<string> {
  const url = new URL(tokenUrl);
  url.searchParams.set('service', HUB_SERVICE);
  url.searchParams.set('scope', `repository:${repo}:pull,push`);
  const basic = Buffer.from(`${HUB_USER}:${HUB_PASSWORD}`).toString('base64');
  const response = await fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = (await response.json()) as { token?: string };
  if (response.status !== 200 || !body.token) throw new Error(`push token for ${repo}: ${response.status}`);
  return `Bearer ${body.token}`;
}

async function pushBlob(registryUrl: string, authorization: string, repo: string, blob: BlobFile): Promise<void> {
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`POST upload ${repo}: ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', registryUrl);
  location.searchParams.set('digest', blob.digest);
  const done = await fetch(location, {
    method: 'PUT',
    headers: { authorization, 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: Readable.toWeb(createReadStream(blob.file, { highWaterMark: CHUNK })) as ReadableStream<Uint8Array>,
    duplex: 'half',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  } as RequestInit);
  if (done.status !== 201) throw new Error(`PUT blob ${repo}@${blob.digest}: ${done.status} ${await done.text()}`);
}
