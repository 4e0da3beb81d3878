/**
 * Shared pieces of the property-based tests (fast-check) for the parsers that take outside input
 * (issue 12, "Fuzzing"): a fixed seed so a failure reproduces, run counts that keep the folder
 * fast, generators for valid input per the grammars, and mutations that turn it into the kind of
 * almost-valid input an attacker or a broken peer sends.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { MirrorError } from '../../src/domain/errors.js';

/**
 * Fixed, so a failing run prints its counterexample and the same seed finds it again. To explore
 * beyond it: `FUZZ_SEED=<n> FUZZ_RUNS_FACTOR=<k> npx vitest run test/fuzz`.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20_240_612);
const FACTOR = Number(process.env.FUZZ_RUNS_FACTOR ?? 1);
export const FUZZ = { seed: SEED, numRuns: Math.round(1000 * FACTOR) } as const;
/** For properties that do I/O per run (archives); an import also writes manifests and tags. */
export const FUZZ_IO = { seed: SEED, numRuns: Math.round(60 * FACTOR) } as const;
export const FUZZ_IMPORT = { seed: SEED, numRuns: Math.round(30 * FACTOR) } as const;

const ALNUM = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
const alnumRun = fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 1, maxLength: 12 });
/** distribution-spec `<name>` path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, built, not matched. */
export const pathComponent = fc
  .tuple(alnumRun, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '--', '---'), alnumRun), { maxLength: 4 }))
  .map(([first, rest]) => first + rest.map(([separator, run]) => separator + run).join(''));
/** Components joined while the name stays within distribution's 255 characters. */
export const repositoryName = fc.array(pathComponent, { minLength: 1, maxLength: 5 }).map((parts) =>
  parts.reduce((name, part) => (name === '' ? part : `${name}/${part}`.length <= 255 ? `${name}/${part}` : name), ''));
export const tag = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/);
export const sha256Hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex'));
export const sha512Hex = fc.uint8Array({ minLength: 64, maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('hex'));
export const sha256Digest = sha256Hex.map((hex) => `sha256:${hex}`);
export const digest = fc.oneof(sha256Digest, sha512Hex.map((hex) => `sha512:${hex}`));

/**
 * Any code point but lone surrogates. Like fc.string({ unit: 'binary' }), whose first use builds
 * a table of all of Unicode (seconds per test file); this one costs nothing up front.
 */
export const anyCodePoint = fc.oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff })).map((code) => String.fromCodePoint(code));
export const anyString = (constraints: { minLength?: number; maxLength?: number } = {}) => fc.string({ unit: anyCodePoint, ...constraints });

/**
 * Characters that matter to the parsers here: separators, path syntax, quotes, controls, and
 * non-ASCII letters whose case mappings are surprising (Kelvin sign, dotless i, long s).
 */
const INTERESTING = ['/', '.', '..', '_', '__', '-', ':', '@', '%', '%2e', '%2f', '?', '#', '=', ',', ';', '"', '\\', ' ', '\t', '\r', '\n', '\0', 'A', 'Z', '\u212A', '\u0131', '\u017F', '\u00e9', '\u{1F600}', '\uFEFF'];

/** A string with one of: a character inserted, replaced or deleted, or a piece repeated. */
export function mutated(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const piece = fc.oneof(fc.constantFrom(...INTERESTING), anyString({ maxLength: 3 }));
  return fc.tuple(valid, fc.nat(), piece, fc.constantFrom('insert', 'replace', 'delete', 'repeat')).map(([text, at, insert, how]) => {
    const index = text.length === 0 ? 0 : at % (text.length + 1);
    switch (how) {
      case 'insert': return text.slice(0, index) + insert + text.slice(index);
      case 'replace': return text.slice(0, index) + insert + text.slice(index + 1);
      case 'delete': return text.slice(0, index) + text.slice(index + 1);
      default: return text.slice(0, index) + text.slice(index, index + 3).repeat(1 + (at % 50)) + text.slice(index + 3);
    }
  });
}

/** Anything from printable noise to full Unicode, plus mutations of `valid`. */
export function hostile(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.oneof(valid, mutated(valid), mutated(mutated(valid)), fc.string(), anyString(), fc.string({ unit: 'binary-ascii' }));
}

/**
 * Runs `parse`; returns its value, or the error when it is one of `allowed` (MirrorError
 * classes). Anything else (a TypeError, a RangeError, a MirrorError of another class) fails the
 * property with the input in the message.
 */
export function outcomeOf<T>(parse: () => T, allowed: Array<abstract new (...args: never[]) => MirrorError>, input: unknown): T | MirrorError {
  try {
    return parse();
  } catch (error) {
    const ok = allowed.some((kind) => error instanceof kind);
    expect(ok, `input ${JSON.stringify(input)} threw ${(error as Error).name}: ${(error as Error).message}`).toBe(true);
    return error as MirrorError;
  }
}

/** Wall-clock time of `run` in ms: for the pathological-input checks (catastrophic backtracking). */
export function timeOf(run: () => unknown): number {
  const started = performance.now();
  try {
    run();
  } catch {
    // only the time matters here
  }
  return performance.now() - started;
}

/**
 * Catastrophic backtracking on these inputs takes seconds to centuries; linear parsing takes
 * well under a millisecond per kilobyte. The bound is generous so a busy machine cannot fail it.
 */
export const PATHOLOGICAL_MS = 1_000;
