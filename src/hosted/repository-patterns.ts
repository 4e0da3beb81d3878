/**
 * Glob patterns over repository names, for `hosted.repositories` and `auth.access[].repositories`.
 * A pattern is `/`-separated components, each one of:
 *   `*`      exactly one path component             `team/*` matches `team/app`, not `team/a/b`
 *   `**`     any number of components, ZERO included `team/**` matches `team`, `team/app`, `team/a/b`;
 *                                                    `a/**\/b` matches `a/b` and `a/x/y/b`; `**` matches every name
 *   literal  that component exactly (the distribution-spec `<name>` component grammar)
 * Zero is included so that one pattern names a namespace and everything in it, and so that `**`
 * means the same wherever it stands. Wildcards inside a component (`team-*`) are refused rather
 * than guessed at. Patterns are checked when the config is loaded; errors name the key.
 *
 * Matching is a table over (pattern component, name component): linear in their product, never
 * exponential however many `**` a pattern has.
 */
import { ConfigError } from '../config/config-error.js';

const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
/** distribution's limit on a whole name (domain/reference.ts); a longer literal pattern matches nothing. */
const MAX_NAME_LENGTH = 255;

type Segment = { kind: 'literal'; text: string } | { kind: 'one' } | { kind: 'any' };

export class RepositoryPattern {
  readonly #segments: Segment[];

  private constructor(
    readonly source: string,
    segments: Segment[],
  ) {
    this.#segments = segments;
  }

  /** Parses `text`; ConfigError names `key` and says what is wrong. */
  static parse(text: unknown, key: string): RepositoryPattern {
    if (typeof text !== 'string') throw new ConfigError(`${key}: expected a repository pattern string, got ${JSON.stringify(text) ?? String(text)}`);
    return new RepositoryPattern(text, parseSegments(text, key));
  }

  matches(name: string): boolean {
    return matchSegments(this.#segments, name.split('/'));
  }
}

/** A list of patterns; a name matches the list when it matches any of them. */
export class RepositoryPatterns {
  private constructor(readonly patterns: readonly RepositoryPattern[]) {}

  /** `values` must be an array of pattern strings (it may be empty: it then matches nothing). */
  static parse(values: unknown, key: string): RepositoryPatterns {
    if (!Array.isArray(values)) throw new ConfigError(`${key}: expected an array of repository patterns (e.g. ["team/**", "my-image"]), got ${JSON.stringify(values) ?? String(values)}`);
    return new RepositoryPatterns(values.map((value, index) => RepositoryPattern.parse(value, `${key}[${index}]`)));
  }

  static none(): RepositoryPatterns {
    return new RepositoryPatterns([]);
  }

  matches(name: string): boolean {
    return this.patterns.some((pattern) => pattern.matches(name));
  }

  /** The first pattern matching `name`, for messages and logs. */
  firstMatch(name: string): string | undefined {
    return this.patterns.find((pattern) => pattern.matches(name))?.source;
  }

  /** `"team/**", "my-image"`: for errors that tell a client which names are hosted. */
  describe(): string {
    return this.patterns.length === 0 ? '(none)' : this.patterns.map((pattern) => JSON.stringify(pattern.source)).join(', ');
  }
}

function parseSegments(text: string, key: string): Segment[] {
  const where = `${key}: ${JSON.stringify(text.slice(0, 300))}`;
  if (text === '') throw new ConfigError(`${where}: a repository pattern cannot be empty`);
  if (text.startsWith('/') || text.endsWith('/')) throw new ConfigError(`${where}: no leading or trailing "/" (write "team/**", not "/team/**/")`);
  const literalLength = text.replace(/\*+/g, 'x').length;
  if (literalLength > MAX_NAME_LENGTH) throw new ConfigError(`${where}: longer than a repository name can be (${MAX_NAME_LENGTH} characters)`);
  return text.split('/').map((component, index) => parseSegment(component, index, where));
}

function parseSegment(component: string, index: number, where: string): Segment {
  if (component === '*') return { kind: 'one' };
  if (component === '**') return { kind: 'any' };
  if (component === '') throw new ConfigError(`${where}: component ${index + 1} is empty ("//")`);
  if (component.includes('*')) {
    throw new ConfigError(`${where}: "${component}": "*" and "**" must be whole components ("team/*", "team/**"); wildcards inside a name are not supported`);
  }
  if (!COMPONENT.test(component)) {
    throw new ConfigError(`${where}: "${component}" is not a repository name component (lower-case letters, digits, and ".", "_", "__" or "-" between them)`);
  }
  return { kind: 'literal', text: component };
}

/**
 * reachable[j]: the first i pattern segments can match the first j name components. One row per
 * pattern segment; `**` lets a row extend over any number of further components.
 */
function matchSegments(segments: Segment[], components: string[]): boolean {
  let reachable = new Array<boolean>(components.length + 1).fill(false);
  reachable[0] = true;
  for (const segment of segments) {
    const next = new Array<boolean>(components.length + 1).fill(false);
    for (let j = 0; j <= components.length; j++) {
      if (segment.kind === 'any') next[j] = reachable[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0 && reachable[j - 1]) next[j] = segment.kind === 'one' || segment.text === components[j - 1];
    }
    reachable = next;
  }
  return reachable[components.length]!;
}
