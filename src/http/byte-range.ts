/**
 * Single byte ranges for blob GETs (RFC 9110 section 14.1.2): `bytes=first-last`,
 * `bytes=first-` and `bytes=-suffixLength`. Clients use them to resume layer downloads. A
 * malformed or multi-part range is refused with 416 rather than silently ignored, so the client
 * learns what was wrong.
 */
import { RangeNotSatisfiableError } from '../domain/errors.js';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** Range unit names are case-insensitive (RFC 9110 section 14.1). */
const RANGE_PATTERN = /^bytes=(\d*)-(\d*)$/i;

/** Returns undefined when the whole blob is wanted. */
export function parseByteRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = RANGE_PATTERN.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) throw new RangeNotSatisfiableError(size);
  const [first, last] = [match[1]!, match[2]!];
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) throw new RangeNotSatisfiableError(size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw new RangeNotSatisfiableError(size);
  return { start, end };
}
