/**
 * Single byte ranges for blob GETs (RFC 9110 section 14.1.2): `bytes=first-last`, `bytes=first-`
 * and `bytes=-suffixLength`. Clients use them to resume layer downloads. The header is parsed
 * where the request arrives; it is resolved against the blob's size where that is known (the
 * blob may still be downloading). A malformed or multi-part range is refused with 416 rather
 * than silently ignored, so the client learns what was wrong; a range in another unit than bytes
 * is ignored, as RFC 9110 section 14.2 requires of a server that does not know the unit.
 */
import { RangeNotSatisfiableError } from './errors.js';

/** Bytes `start` to `end`, both inclusive (the same shape as storage/content-store.ts ByteRange). */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeRequest =
  | { kind: 'from'; first: number; last: number | undefined }
  | { kind: 'suffix'; length: number }
  | { kind: 'malformed' };

/** Range unit names are case-insensitive (RFC 9110 section 14.1). */
const RANGE_PATTERN = /^bytes=(\d*)-(\d*)$/i;

/** Undefined when the whole blob is wanted. */
export function parseRangeHeader(header: string | undefined): RangeRequest | undefined {
  if (header === undefined || !isBytesUnit(header)) return undefined;
  const match = RANGE_PATTERN.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return { kind: 'malformed' };
  if (match[1] === '') return { kind: 'suffix', length: Number(match[2]) };
  return { kind: 'from', first: Number(match[1]), last: match[2] === '' ? undefined : Number(match[2]) };
}

/** True unless the header names a unit (the token before `=`) that is not bytes. */
function isBytesUnit(header: string): boolean {
  const equals = header.indexOf('=');
  return equals === -1 || header.slice(0, equals).trim().toLowerCase() === 'bytes';
}

/** The bytes a request wants of a blob of `size` bytes; undefined: all of them. Throws 416 when none. */
export function resolveRange(request: RangeRequest | undefined, size: number): ByteRange | undefined {
  if (request === undefined) return undefined;
  if (request.kind === 'malformed') throw new RangeNotSatisfiableError(size);
  if (request.kind === 'suffix') {
    if (request.length === 0 || size === 0) throw new RangeNotSatisfiableError(size);
    return { start: Math.max(0, size - request.length), end: size - 1 };
  }
  const end = request.last === undefined ? size - 1 : Math.min(request.last, size - 1);
  if (!Number.isSafeInteger(request.first) || request.first >= size || end < request.first) throw new RangeNotSatisfiableError(size);
  return { start: request.first, end };
}
