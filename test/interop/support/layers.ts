/**
 * Deterministic image layers: gzip-compressed ustar archives of a few small files. File bodies
 * are either given text or pseudo-random bytes from AES-CTR keyed by a seed string, so they are
 * reproducible, incompressible (a layer's size is predictable) and distinct per seed.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/** 2024-06-01T00:00:00Z: every entry carries the same mtime, so rebuilding gives the same bytes. */
export const LAYER_MTIME = 1_717_200_000;
const BLOCK = 512;

export type LayerFile = { path: string; text: string } | { path: string; randomBytes: number; seed: string } | { path: string; symlinkTo: string };

export interface Layer {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly size: number;
  /** Digest of the uncompressed tar: the image config's rootfs.diff_ids entry. */
  readonly diffId: string;
}

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function pseudoRandomBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

export function buildLayer(files: LayerFile[]): Layer {
  const tar = Buffer.concat([...directoriesOf(files).map(directoryEntry), ...files.flatMap(fileEntry), Buffer.alloc(2 * BLOCK)]);
  const bytes = gzipSync(tar, { level: 6 });
  return { bytes, digest: sha256Digest(bytes), size: bytes.length, diffId: sha256Digest(tar) };
}

/** Parent directories come first in a tar, as image builders write them. */
function directoriesOf(files: LayerFile[]): string[] {
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.path.split('/').slice(0, -1);
    parts.forEach((_, i) => dirs.add(`${parts.slice(0, i + 1).join('/')}/`));
  }
  return [...dirs].sort();
}

function directoryEntry(path: string): Buffer {
  return header(path, 0o755, 0, '5');
}

function fileEntry(file: LayerFile): Buffer[] {
  if ('symlinkTo' in file) return [header(file.path, 0o777, 0, '2', file.symlinkTo)];
  const body = 'text' in file ? Buffer.from(file.text) : pseudoRandomBytes(file.seed, file.randomBytes);
  const mode = file.path.includes('bin/') ? 0o755 : 0o644;
  return [header(file.path, mode, body.length, '0'), body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)];
}

/** One ustar header block (POSIX.1-1988); names here are short enough not to need pax records. */
function header(name: string, mode: number, size: number, type: string, linkName = ''): Buffer {
  if (Buffer.byteLength(name) > 100 || Buffer.byteLength(linkName) > 100) throw new Error(`tar name too long: ${name}`);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(LAYER_MTIME, 12), 136);
  block.write(' '.repeat(8), 148);
  block.write(type, 156);
  block.write(linkName, 157, 100, 'utf8');
  block.write('ustar\u000000', 257);
  block.write('root', 265);
  block.write('root', 297);
  const checksum = block.reduce((sum, byte) => sum + byte, 0);
  block.write(`${checksum.toString(8).padStart(6, '0')}\u0000 `, 148);
  return block;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\u0000`;
}
