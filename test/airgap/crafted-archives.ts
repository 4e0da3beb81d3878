/**
 * OCI layout archives written by the tests themselves (not by `export`): any number of index
 * entries, any ref.name, tags pointing wherever a test needs, and index.json bytes of any shape.
 */
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';
import type { TestBlob, TestImage } from '../helpers/test-images.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface IndexEntry {
  image: TestImage;
  refName?: string;
  /** Padding in an annotation, to make index.json as large as a test needs. */
  padding?: number;
}

/** index.json for `entries`, as `export` writes it (an OCI image index). */
export function indexJsonOf(entries: IndexEntry[]): Buffer {
  const manifests = entries.map(({ image, refName, padding }) => ({
    mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.size,
    annotations: { ...(refName === undefined ? {} : { [REF_NAME]: refName }), ...(padding ? { 'test.padding': 'x'.repeat(padding) } : {}) },
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}

/** The blobs of `images` (config, layers, manifest), each once. */
export function blobsOf(images: TestImage[]): TestBlob[] {
  const seen = new Map<string, TestBlob>();
  for (const image of images) for (const blob of [image.config, ...image.layers, image.manifest]) seen.set(blob.digest, blob);
  return [...seen.values()];
}

/** Writes a tar: oci-layout, `index` as index.json (unless undefined), then the blobs. */
export async function writeLayoutArchive(file: string, index: Buffer | undefined, blobs: TestBlob[], options: { indexLast?: boolean } = {}): Promise<void> {
  const entries: Array<{ name: string; bytes: Buffer }> = [{ name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }];
  const blobEntries = blobs.map((blob) => ({ name: `blobs/sha256/${blob.digest.slice('sha256:'.length)}`, bytes: blob.bytes }));
  const indexEntry = index === undefined ? [] : [{ name: 'index.json', bytes: index }];
  entries.push(...(options.indexLast ? [...blobEntries, ...indexEntry] : [...indexEntry, ...blobEntries]));
  const pack = tar.pack();
  const out = createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  pack.pipe(out);
  for (const entry of entries) {
    await new Promise<void>((resolve, reject) => pack.entry({ name: entry.name, size: entry.bytes.length }, entry.bytes, (error) => (error ? reject(error) : resolve())));
  }
  pack.finalize();
  await done;
}
