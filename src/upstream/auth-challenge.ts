/**
 * Parses `WWW-Authenticate` (RFC 9110 section 11.6.1):
 *
 *   WWW-Authenticate = #challenge
 *   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 *
 * Commas separate both challenges and the parameters inside one, so a comma alone says nothing:
 * a token followed by "=" is a parameter of the current challenge, any other token starts a new
 * one. Quoted strings may hold commas and backslash escapes (RFC 9110 section 5.6.4).
 */
export interface AuthChallenge {
  /** Lower-cased: schemes compare case-insensitively. */
  scheme: string;
  /** Parameter names lower-cased for the same reason; values as sent, unquoted. */
  params: Record<string, string>;
  token68?: string;
}

/** What a registry can ask of us (distribution "Token Authentication Specification", or Basic). */
export type RegistryChallenge =
  | { scheme: 'bearer'; realm: string; service: string | undefined }
  | { scheme: 'basic' };

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_THEN_END = /^[ \t]+([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)/;

export function parseAuthChallenges(header: string | readonly string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const values = typeof header === 'string' ? [header] : header;
  return values.flatMap((value) => new ChallengeParser(value).parse());
}

/** Bearer with a realm wins over Basic: registries offering both expect token auth. */
export function chooseRegistryChallenge(challenges: readonly AuthChallenge[]): RegistryChallenge | undefined {
  const bearer = challenges.find((challenge) => challenge.scheme === 'bearer' && challenge.params.realm);
  if (bearer) return { scheme: 'bearer', realm: bearer.params.realm!, service: bearer.params.service };
  return challenges.some((challenge) => challenge.scheme === 'basic') ? { scheme: 'basic' } : undefined;
}

class ChallengeParser {
  #pos = 0;
  constructor(private readonly text: string) {}

  parse(): AuthChallenge[] {
    const challenges: AuthChallenge[] = [];
    let current: AuthChallenge | undefined;
    while (this.#skip(/[ \t,]/)) {
      const name = this.#readToken();
      if (!name) break; // malformed from here on: keep what was understood
      const value = this.#readParamValue();
      if (value !== undefined) {
        if (!current) break; // a parameter before any scheme
        current.params[name.toLowerCase()] ??= value; // RFC 9110: each name at most once
        continue;
      }
      // No prototype: a parameter named "constructor" or "__proto__" is data like any other.
      current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
      challenges.push(current);
      const token68 = this.#readToken68();
      if (token68) current.token68 = token68;
    }
    return challenges;
  }

  /** Skips characters matching `pattern`; false at the end of the text. */
  #skip(pattern: RegExp): boolean {
    while (this.#pos < this.text.length && pattern.test(this.text[this.#pos]!)) this.#pos++;
    return this.#pos < this.text.length;
  }

  #readToken(): string {
    const start = this.#pos;
    while (this.#pos < this.text.length && TCHAR.test(this.text[this.#pos]!)) this.#pos++;
    return this.text.slice(start, this.#pos);
  }

  /**
   * `BWS "=" BWS ( token / quoted-string )`, or undefined with the position unchanged. An empty
   * value (`service=""`, or nothing before the next comma) is still a value: the name before
   * "=" is a parameter either way, never a new scheme.
   */
  #readParamValue(): string | undefined {
    const start = this.#pos;
    this.#skip(/[ \t]/);
    if (this.text[this.#pos] !== '=') {
      this.#pos = start;
      return undefined;
    }
    this.#pos++;
    this.#skip(/[ \t]/);
    return this.text[this.#pos] === '"' ? this.#readQuoted() : this.#readBareValue();
  }

  /**
   * An unquoted value is a token in RFC 9110, but some servers send bare URLs
   * (`realm=https://...`); reading up to the next comma or space accepts those and parses every
   * valid header the same way.
   */
  #readBareValue(): string {
    const start = this.#pos;
    while (this.#pos < this.text.length && !/[\s,"]/.test(this.text[this.#pos]!)) this.#pos++;
    return this.text.slice(start, this.#pos);
  }

  #readQuoted(): string {
    let value = '';
    this.#pos++; // opening quote
    while (this.#pos < this.text.length) {
      const char = this.text[this.#pos++]!;
      if (char === '"') return value;
      value += char === '\\' && this.#pos < this.text.length ? this.text[this.#pos++]! : char;
    }
    return value; // unterminated: lenient, the value still goes through every trust check
  }

  #readToken68(): string | undefined {
    const match = TOKEN68_THEN_END.exec(this.text.slice(this.#pos));
    if (!match) return undefined;
    this.#pos += match[0].length;
    return match[1];
  }
}
