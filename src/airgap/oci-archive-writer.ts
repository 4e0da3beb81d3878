/**
 * Writes planned images as an OCI image layout in a tar stream (OCI image-spec "Image Layout"):
 *
 *   oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   index.json            one entry per image, its full reference in org.opencontainers.image.ref.name
 *   blobs/sha256/<hex>    manifests and blobs, each digest once
 *
 * which is what `skopeo copy oci-archive:FILE:docker.io/library/alpine:3.20 ...` reads. Blob
 * bytes go from the content store straight into the tar stream: no copy on disk, and memory
 * bounded by the streams' buffers. Headers carry a fixed mtime so the same cache gives the same archive.
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { parseDigest } from '../domain/digest.js';
import { OCI_INDEX } from '../domain/media-types.js';
import { BlobUnknownError } from '../domain/errors.js';
import type { ContentStore } from '../storage/content-store.js';
import { readContent } from '../storage/read-content.js';
import type { ExportImage } from './export-plan.js';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const FIXED_MTIME = new Date(0);

/** Called per image with the bytes that image adds to the archive, then as they are written. */
export interface ExportProgress {
  image(refName: string, totalBytes: number): { advance(bytes: number): void; finish(): void };
}

export function indexJson(images: ExportImage[]): Buffer {
  const manifests = images.map(({ refName, top }) => ({
    mediaType: top.mediaType,
    digest: top.digest,
    size: top.bytes.byteLength,
    annotations: { [REF_NAME_ANNOTATION]: refName },
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }, null, 2));
}

export async function writeOciArchive(images: ExportImage[], content: ContentStore, out: Writable, progress: ExportProgress): Promise<number> {
  const pack = tar.pack();
  const piping = pipeline(pack, out);
  piping.catch(() => {});
  let written = 0;
  const add = async (name: string, bytes: Buffer) => {
    await new Promise<void>((resolve, reject) => pack.entry({ name, size: bytes.byteLength, mtime: FIXED_MTIME, mode: 0o644 }, bytes, (error) => (error ? reject(error) : resolve())));
    written += bytes.byteLength;
  };
  try {
    await add('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    await add('index.json', indexJson(images));
    const done = new Set<string>();
    for (const image of images) {
      const manifests = image.contents.manifests.filter((manifest) => !done.has(manifest.digest));
      const blobs = image.contents.blobs.filter((blob) => !done.has(blob.digest));
      const total = manifests.reduce((sum, m) => sum + m.bytes.byteLength, 0) + blobs.reduce((sum, b) => sum + b.size, 0);
      const task = progress.image(image.refName, total);
      for (const manifest of manifests) {
        done.add(manifest.digest);
        await add(blobPath(manifest.digest), manifest.bytes);
        task.advance(manifest.bytes.byteLength);
      }
      for (const blob of blobs) {
        done.add(blob.digest);
        written += await addBlob(pack, content, blob.digest, blob.size, task);
      }
      task.finish();
    }
    pack.finalize();
    await piping;
  } catch (error) {
    pack.destroy(error as Error);
    throw error;
  }
  return written;
}

async function addBlob(pack: tar.Pack, content: ContentStore, digestText: string, size: number, task: { advance(bytes: number): void }): Promise<number> {
  const digest = parseDigest(digestText);
  const header = { name: blobPath(digestText), size, mtime: FIXED_MTIME, mode: 0o644 };
  if (size === 0) {
    await new Promise<void>((resolve, reject) => pack.entry(header, Buffer.alloc(0), (error) => (error ? reject(error) : resolve())));
    return 0;
  }
  const source = await readContent(content, digest, { start: 0, end: size - 1 });
  if (!source) throw new BlobUnknownError(`blob ${digestText} left the cache while the archive was written`);
  const entry = pack.entry(header);
  source.on('data', (chunk: Buffer) => task.advance(chunk.byteLength));
  await pipeline(source, entry);
  return size;
}

function blobPath(digest: string): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}
