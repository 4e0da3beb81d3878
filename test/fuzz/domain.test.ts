/**
 * Repository names, tags, digests and manifest references (src/domain/): every valid value
 * round-trips, every other input is refused with the error class of its kind (never a
 * TypeError), and whatever is accepted is safe to build a cache path from.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDigest, parseDigest } from '../../src/domain/digest.js';
import { DigestInvalidError, NameInvalidError, TagInvalidError } from '../../src/domain/errors.js';
import { assertRepositoryName, assertTag, isTag, parseManifestReference, referenceText } from '../../src/domain/reference.js';
import { FUZZ, PATHOLOGICAL_MS, digest, hostile, outcomeOf, repositoryName, tag, timeOf } from './fuzz-support.js';

describe('repository names', () => {
  it('accepts every name of the distribution-spec grammar, as is', () => {
    fc.assert(fc.property(repositoryName, (name) => {
      expect(assertRepositoryName(name)).toBe(name);
    }), FUZZ);
  });

  it('refuses anything else with NameInvalidError, and what it accepts cannot leave a directory', () => {
    fc.assert(fc.property(hostile(repositoryName), (input) => {
      const result = outcomeOf(() => assertRepositoryName(input), [NameInvalidError], input);
      if (typeof result !== 'string') return;
      expect(result.length).toBeLessThanOrEqual(255);
      for (const part of result.split('/')) {
        expect(part).not.toBe('');
        expect(part).not.toBe('.');
        expect(part).not.toBe('..');
      }
      expect(result).toMatch(/^[a-z0-9._\-/]+$/);
    }), FUZZ);
  });

  it('answers pathological names quickly', () => {
    for (const input of ['a-'.repeat(50_000), `${'a'.repeat(100_000)}!`, `${'a.'.repeat(120)}a`.padEnd(255, 'a') + '!', '__'.repeat(50_000), 'a/'.repeat(50_000)]) {
      expect(timeOf(() => assertRepositoryName(input))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});

describe('tags and manifest references', () => {
  it('round-trips tags and digests through parseManifestReference and referenceText', () => {
    fc.assert(fc.property(fc.oneof(tag, digest), (reference) => {
      const parsed = parseManifestReference(reference);
      expect(parsed.kind).toBe(reference.includes(':') ? 'digest' : 'tag');
      expect(referenceText(parsed)).toBe(reference);
    }), FUZZ);
  });

  it('refuses other references with TagInvalidError or DigestInvalidError', () => {
    fc.assert(fc.property(hostile(fc.oneof(tag, digest)), (input) => {
      const result = outcomeOf(() => parseManifestReference(input), [TagInvalidError, DigestInvalidError], input);
      if (result instanceof Error) {
        expect(result).toBeInstanceOf(input.includes(':') ? DigestInvalidError : TagInvalidError);
        return;
      }
      expect(referenceText(result)).toBe(input);
      if (result.kind === 'tag') expect(isTag(input)).toBe(true);
      expect(input).not.toMatch(/[/\\\s]/);
    }), FUZZ);
  });

  it('agrees between assertTag and isTag', () => {
    fc.assert(fc.property(hostile(tag), (input) => {
      const result = outcomeOf(() => assertTag(input), [TagInvalidError], input);
      expect(typeof result === 'string').toBe(isTag(input));
    }), FUZZ);
  });
});

describe('digests', () => {
  it('round-trips sha256 and sha512 digests', () => {
    fc.assert(fc.property(digest, (value) => {
      const parsed = parseDigest(value);
      expect(parsed.value).toBe(value);
      expect(`${parsed.algorithm}:${parsed.hex}`).toBe(value);
      expect(isDigest(value)).toBe(true);
    }), FUZZ);
  });

  it('refuses anything else with DigestInvalidError, in agreement with isDigest', () => {
    fc.assert(fc.property(hostile(digest), (input) => {
      const result = outcomeOf(() => parseDigest(input), [DigestInvalidError], input);
      expect(!(result instanceof Error)).toBe(isDigest(input));
      if (!(result instanceof Error)) expect(result.hex).toMatch(/^[a-f0-9]{64}([a-f0-9]{64})?$/);
    }), FUZZ);
  });

  it('answers pathological digests quickly', () => {
    for (const input of [`sha256:${'a'.repeat(200_000)}`, `sha256:${'a'.repeat(200_000)}!`, `sha512:${'0'.repeat(127)}`.repeat(1000)]) {
      expect(timeOf(() => parseDigest(input))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});
