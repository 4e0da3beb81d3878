/**
 * The archives of the scale scenario (issue 13: 200,000 tags in 2,000 repositories), written as
 * `registry-mirror export` writes them (an OCI image layout tar) so the real `import` reads them:
 *
 *   scale.tar    every repository has two small images (a and b: own config, one shared layer);
 *                its tags t000..t099 point to a (even) or b (odd); index.json names every tag
 *   repoint.tar  index.json only: `count` random tags pointed at their repository's other image
 *                (the manifests are in the cache already, so the archive carries no blobs)
 *
 *   node --import tsx test/bench/scale-archive.ts --out DIR [--tags 200000] [--repositories 2000]
 *
 * Deterministic except for which tags repoint.tar moves.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface ScaleShape {
  tags: number;
  repositories: number;
}

export interface ScaleArchive {
  file: string;
  /** Full references and the digest each should resolve to after the import. */
  sample: Array<{ repository: string; tag: string; digest: string }>;
  bytes: number;
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const REF_NAME = 'org.opencontainers.image.ref.name';

export const repositoryName = (r: number) => `bench/repo-${String(r).padStart(5, '0')}`;
export const tagName = (t: number) => `t${String(t).padStart(3, '0')}`;
export const tagsPerRepository = (shape: ScaleShape) => Math.ceil(shape.tags / shape.repositories);

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const LAYER = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 131) % 251));

interface Blob {
  digest: string;
  bytes: Buffer;
}

/** Image a or b of repository r: its config and manifest (the layer is shared). */
export function scaleImage(r: number, variant: 'a' | 'b'): { config: Blob; manifest: Blob } {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: [`REPO=${r}`, `VARIANT=${variant}`] }, rootfs: { type: 'layers', diff_ids: [sha256(LAYER)] } }));
  const config = { digest: sha256(configBytes), bytes: configBytes };
  const manifestBytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: configBytes.length },
    layers: [{ mediaType: OCI_LAYER, digest: sha256(LAYER), size: LAYER.length }],
  }));
  return { config, manifest: { digest: sha256(manifestBytes), bytes: manifestBytes } };
}

function indexEntry(r: number, t: number, manifest: Blob): string {
  return JSON.stringify({ mediaType: OCI_MANIFEST, digest: manifest.digest, size: manifest.bytes.length, annotations: { [REF_NAME]: `docker.io/${repositoryName(r)}:${tagName(t)}` } });
}

/** Writes scale.tar: every tag of every repository, with all blobs. */
export async function writeScaleArchive(file: string, shape: ScaleShape): Promise<ScaleArchive> {
  const perRepository = tagsPerRepository(shape);
  const images = Array.from({ length: shape.repositories }, (_, r) => ({ a: scaleImage(r, 'a'), b: scaleImage(r, 'b') }));
  const entries: string[] = [];
  for (let i = 0; i < shape.tags; i += 1) {
    const r = Math.floor(i / perRepository);
    const t = i % perRepository;
    entries.push(indexEntry(r, t, t % 2 === 0 ? images[r]!.a.manifest : images[r]!.b.manifest));
  }
  const blobs: Blob[] = [{ digest: sha256(LAYER), bytes: LAYER }];
  for (const { a, b } of images) blobs.push(a.config, a.manifest, b.config, b.manifest);
  const bytes = await writeLayout(file, indexOf(entries), blobs);
  const sample = [0, 1, shape.repositories - 1].map((r) => ({ repository: repositoryName(r), tag: tagName(1), digest: images[r]!.b.manifest.digest }));
  return { file, sample, bytes };
}

/** Writes repoint.tar: `count` distinct random tags moved to their repository's other image. */
export async function writeRepointArchive(file: string, shape: ScaleShape, count: number): Promise<ScaleArchive> {
  const perRepository = tagsPerRepository(shape);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, shape.tags)) chosen.add(Math.floor(Math.random() * shape.tags));
  const entries: string[] = [];
  const sample: ScaleArchive['sample'] = [];
  for (const i of chosen) {
    const r = Math.floor(i / perRepository);
    const t = i % perRepository;
    const moved = scaleImage(r, t % 2 === 0 ? 'b' : 'a').manifest;
    entries.push(indexEntry(r, t, moved));
    if (sample.length < 5) sample.push({ repository: repositoryName(r), tag: tagName(t), digest: moved.digest });
  }
  const bytes = await writeLayout(file, indexOf(entries), []);
  return { file, sample, bytes };
}

function indexOf(entries: string[]): Buffer {
  return Buffer.from(`{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[\n${entries.join(',\n')}\n]}\n`);
}

async function writeLayout(file: string, index: Buffer, blobs: Blob[]): Promise<number> {
  const pack = tar.pack();
  let bytes = 0;
  const writing = pipeline(pack, createWriteStream(file));
  const add = (name: string, body: Buffer) => new Promise<void>((resolve, reject) => {
    bytes += body.length;
    pack.entry({ name, size: body.length, mtime: new Date(0), mode: 0o644 }, body, (error) => (error ? reject(error) : resolve()));
  });
  await add('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  await add('index.json', index);
  for (const blob of blobs) await add(`blobs/sha256/${blob.digest.slice('sha256:'.length)}`, blob.bytes);
  pack.finalize();
  await writing;
  return bytes;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { out: { type: 'string' }, tags: { type: 'string', default: '200000' }, repositories: { type: 'string', default: '2000' } } });
  if (!values.out) throw new Error('usage: scale-archive.ts --out DIR [--tags N] [--repositories N]');
  const shape = { tags: Number(values.tags), repositories: Number(values.repositories) };
  const main = await writeScaleArchive(`${values.out}/scale.tar`, shape);
  const repoint = await writeRepointArchive(`${values.out}/repoint.tar`, shape, 1_000);
  process.stdout.write(`${JSON.stringify({ scale: main.file, bytes: main.bytes, repoint: repoint.file })}\n`);
}
