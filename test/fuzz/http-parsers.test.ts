/**
 * What clients send the mirror: `Range` (domain/byte-range.ts, RFC 9110 section 14.2), API paths
 * (http/api-path.ts, distribution-spec "Endpoints") and Basic `Authorization` (RFC 7617,
 * http/middleware/client-auth.ts). Valid input round-trips, anything else gets the 4xx of its
 * kind, and nothing throws a TypeError or takes long.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RangeNotSatisfiableError, RouteUnknownError } from '../../src/domain/errors.js';
import { parseApiPath } from '../../src/http/api-path.js';
import { parseRangeHeader, resolveRange } from '../../src/domain/byte-range.js';

const parseByteRange = (header: string | undefined, size: number) => resolveRange(parseRangeHeader(header), size);
import { parseBasicAuthorization } from '../../src/http/middleware/client-auth.js';
import { FUZZ, PATHOLOGICAL_MS, anyString, digest, hostile, outcomeOf, repositoryName, tag, timeOf } from './fuzz-support.js';

/** Blob sizes around the edges: empty, one byte, small, and beyond 32-bit offsets. */
const blobSize = fc.oneof(fc.constantFrom(0, 1, 2, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER), fc.nat({ max: 10_000 }), fc.integer({ min: 0, max: 2 ** 40 }));
const position = fc.oneof(fc.nat({ max: 20_000 }), fc.integer({ min: 0, max: 2 ** 41 }));
/** Range units are case-insensitive (RFC 9110 section 14.1). */
const bytesUnit = fc.constantFrom('bytes', 'Bytes', 'BYTES');
const rangeHeader = fc.oneof(
  fc.tuple(bytesUnit, position, fc.option(position)).map(([unit, first, last]) => `${unit}=${first}-${last ?? ''}`),
  fc.tuple(bytesUnit, position).map(([unit, suffix]) => `${unit}=-${suffix}`),
);

describe('Range', () => {
  it('serves first-last and first- ranges as RFC 9110 section 14.1.2 says, or refuses them with 416', () => {
    fc.assert(fc.property(blobSize, bytesUnit, position, fc.option(position), (size, unit, first, last) => {
      const header = `${unit}=${first}-${last ?? ''}`;
      const result = outcomeOf(() => parseByteRange(header, size), [RangeNotSatisfiableError], header);
      const satisfiable = first < size && (last === null || last >= first);
      if (!satisfiable) {
        expect(result).toBeInstanceOf(RangeNotSatisfiableError);
        return;
      }
      expect(result).toEqual({ start: first, end: Math.min(last ?? size - 1, size - 1) });
    }), FUZZ);
  });

  it('serves suffix ranges (the last n bytes, the whole blob when n is larger)', () => {
    fc.assert(fc.property(blobSize, bytesUnit, position, (size, unit, suffix) => {
      const header = `${unit}=-${suffix}`;
      const result = outcomeOf(() => parseByteRange(header, size), [RangeNotSatisfiableError], header);
      if (suffix === 0 || size === 0) expect(result).toBeInstanceOf(RangeNotSatisfiableError);
      else expect(result).toEqual({ start: Math.max(0, size - suffix), end: size - 1 });
    }), FUZZ);
  });

  it('answers any header with a range inside the blob or 416, never anything else', () => {
    fc.assert(fc.property(hostile(rangeHeader), blobSize, (header, size) => {
      const result = outcomeOf(() => parseByteRange(header, size), [RangeNotSatisfiableError], header);
      if (result === undefined || result instanceof Error) return;
      expect(Number.isSafeInteger(result.start) && Number.isSafeInteger(result.end)).toBe(true);
      expect(0 <= result.start && result.start <= result.end && result.end < size).toBe(true);
    }), FUZZ);
  });

  it('answers pathological headers quickly', () => {
    for (const header of [`bytes=${'9'.repeat(100_000)}-`, `bytes=${'1'.repeat(50_000)}-${'2'.repeat(50_000)}x`, `bytes=${'0-'.repeat(50_000)}`, `${' '.repeat(100_000)}bytes=0-1`]) {
      expect(timeOf(() => parseByteRange(header, 1000))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});

describe('API paths', () => {
  const endpointPath = fc.oneof(
    fc.tuple(repositoryName, fc.oneof(tag, digest)).map(([name, reference]) => ({ name, endpoint: 'manifests', reference })),
    fc.tuple(repositoryName, digest).map(([name, reference]) => ({ name, endpoint: 'blobs', reference })),
    fc.tuple(repositoryName, digest).map(([name, reference]) => ({ name, endpoint: 'referrers', reference })),
    repositoryName.map((name) => ({ name, endpoint: 'tags', reference: 'list' })),
  );
  const pathOf = ({ name, endpoint, reference }: { name: string; endpoint: string; reference: string }) => `/v2/${name}/${endpoint}/${reference}`;

  it('round-trips every endpoint of a valid name, even names with blobs or manifests components', () => {
    const tricky = fc.constantFrom('blobs', 'manifests', 'tags', 'list', 'referrers', 'uploads');
    const name = fc.oneof(repositoryName, fc.tuple(repositoryName, tricky, fc.option(repositoryName)).map(([a, b, c]) => [a, b, c].filter(Boolean).join('/')));
    fc.assert(fc.property(endpointPath, name, (api, otherName) => {
      for (const candidate of [api, { ...api, name: otherName }]) expect(parseApiPath(pathOf(candidate))).toEqual(candidate);
    }), FUZZ);
  });

  it('answers any other path with RouteUnknownError (404), never anything else', () => {
    fc.assert(fc.property(hostile(endpointPath.map(pathOf)), (path) => {
      const result = outcomeOf(() => parseApiPath(path), [RouteUnknownError], path);
      if (result instanceof Error) return;
      expect(result.name.length).toBeGreaterThan(0);
      expect(result.reference).not.toContain('/');
    }), FUZZ);
  });

  it('answers pathological paths quickly', () => {
    for (const path of [`/v2/${'a/'.repeat(50_000)}`, `/v2/${'a/blobs/'.repeat(20_000)}x`, `/v2/${'manifests/'.repeat(20_000)}`, `/v2/${'/'.repeat(100_000)}tags/lis`]) {
      expect(timeOf(() => parseApiPath(path))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});

describe('Basic Authorization', () => {
  // RFC 7617 section 2: the user-id cannot contain a colon; the password can contain anything.
  const user = anyString({ minLength: 1, maxLength: 40 }).filter((text) => !text.includes(':'));
  const password = anyString({ maxLength: 80 });
  const encode = (u: string, p: string) => Buffer.from(`${u}:${p}`, 'utf8').toString('base64');

  it('round-trips any user and password as UTF-8 (RFC 7617 charset="UTF-8")', () => {
    fc.assert(fc.property(user, password, fc.constantFrom('Basic ', 'basic ', 'BASIC  '), (u, p, scheme) => {
      expect(parseBasicAuthorization(`${scheme}${encode(u, p)}`)).toEqual({ user: u, password: p });
    }), FUZZ);
  });

  it('answers any other header with undefined (401), never throws', () => {
    const valid = fc.tuple(user, password).map(([u, p]) => `Basic ${encode(u, p)}`);
    fc.assert(fc.property(hostile(valid), (header) => {
      const result = parseBasicAuthorization(header);
      if (result === undefined) return;
      expect(result.user.length).toBeGreaterThan(0);
      expect(result.user).not.toContain(':');
    }), FUZZ);
  });

  it('answers pathological headers quickly', () => {
    for (const header of [`Basic ${'A'.repeat(200_000)}!`, `Basic ${' '.repeat(100_000)}x`, `Basic ${'='.repeat(100_000)}`, `Basic A${'='.repeat(100_000)} x`]) {
      expect(timeOf(() => parseBasicAuthorization(header))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});
