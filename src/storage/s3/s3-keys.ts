/**
 * Where everything lives in the bucket. Content is keyed by digest only; what a repository holds
 * is metadata (DESIGN.md "Replicas"). Under the configured `prefix`:
 *
 *   blobs/sha256/ab/ab12...ef            published content, written only after its digest was checked
 *   tmp/<writer id>                      a streaming writer's temporary key: a multipart upload while
 *                                        bytes arrive, then (briefly) the completed object being copied
 *   uploads/<writer id>/started          a resumable writer exists (created with it, kept until it ends)
 *   uploads/<writer id>/chunks/<offset>-<nonce>
 *                                        the bytes it holds, one readable object per write; the offset
 *                                        zero-padded to 16 digits so names sort in byte order, the
 *                                        nonce so a chunk is created once and never overwritten
 *
 * A key under blobs/ never names anything but verified bytes; everything else is a writer's and is
 * removed by its commit, its cancel or expireWriters.
 */
import { randomBytes } from 'node:crypto';
import { type Digest, isDigest, parseDigest } from '../../domain/digest.js';
import { BadRequestError } from '../../domain/errors.js';

const WRITER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const OFFSET_DIGITS = 16;
const CHUNK_NAME = /^(\d{16})-[0-9a-f]{8}$/;

export class S3Keys {
  constructor(readonly prefix: string) {}

  get blobsPrefix(): string {
    return `${this.prefix}blobs/`;
  }

  get tmpPrefix(): string {
    return `${this.prefix}tmp/`;
  }

  get uploadsPrefix(): string {
    return `${this.prefix}uploads/`;
  }

  blob(digest: Digest): string {
    return `${this.blobsPrefix}${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
  }

  /** The digest a blob key names, or undefined for anything else found under blobs/. */
  digestOf(key: string): Digest | undefined {
    if (!key.startsWith(this.blobsPrefix)) return undefined;
    const [algorithm, fanout, hex, ...rest] = key.slice(this.blobsPrefix.length).split('/');
    const text = `${algorithm}:${hex}`;
    if (rest.length > 0 || !hex || fanout !== hex.slice(0, 2) || !isDigest(text)) return undefined;
    return parseDigest(text);
  }

  tmp(writerId: string): string {
    return `${this.tmpPrefix}${writerId}`;
  }

  upload(writerId: string): string {
    return `${this.uploadsPrefix}${checkWriterId(writerId)}/`;
  }

  uploadMarker(writerId: string): string {
    return `${this.upload(writerId)}started`;
  }

  /** A new, unique key for the chunk at `offset`. */
  chunk(writerId: string, offset: number): string {
    return `${this.upload(writerId)}chunks/${String(offset).padStart(OFFSET_DIGITS, '0')}-${randomBytes(4).toString('hex')}`;
  }

  /** `{ writerId, offset }` for a chunk key, `{ writerId }` for a marker, undefined otherwise. */
  parseUploadKey(key: string): { writerId: string; offset?: number } | undefined {
    if (!key.startsWith(this.uploadsPrefix)) return undefined;
    const [writerId, kind, offset, ...rest] = key.slice(this.uploadsPrefix.length).split('/');
    if (!writerId || !WRITER_ID.test(writerId) || rest.length > 0) return undefined;
    if (kind === 'started' && offset === undefined) return { writerId };
    const chunk = kind === 'chunks' ? CHUNK_NAME.exec(offset ?? '') : null;
    if (chunk) return { writerId, offset: Number(chunk[1]) };
    return undefined;
  }

  /** The writer id of a streaming writer's temporary key. */
  tmpWriterId(key: string): string | undefined {
    const id = key.startsWith(this.tmpPrefix) ? key.slice(this.tmpPrefix.length) : undefined;
    return id && WRITER_ID.test(id) ? id : undefined;
  }
}

/** Writer ids become key segments: letters, digits, '-' and '_' only (a UUID fits). */
export function checkWriterId(id: string): string {
  if (!WRITER_ID.test(id)) throw new BadRequestError(`invalid upload id ${JSON.stringify(id.slice(0, 200))}: expected 1-128 letters, digits, '-' or '_'`);
  return id;
}
