/**
 * The `Link` header of a tag list page (distribution-spec "Listing Tags": `<url>; rel="next"`,
 * syntax from RFC 8288 section 3):
 *
 *   Link       = #link-value
 *   link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
 *   link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
 *
 * The upstream's link points at the upstream, under the upstream's name for the repository. A
 * client must be sent back to the mirror by the route it came in on (a registry path prefix such
 * as /v2/gcr.io/..., or ?ns=), so the link is rebuilt from the only two values that matter, `n`
 * and `last`, and never copied; a target that is not http(s) gives no link at all.
 */
export interface LinkValue {
  /** The URI-Reference between < and >, as sent. */
  target: string;
  /** Parameter names lower-cased (RFC 8288: case-insensitive); the first of each name wins. */
  params: Record<string, string>;
}

/** The `n` and `last` of a next page. */
export interface PagePosition {
  n: string | undefined;
  last: string;
}

/** Tags are at most 128 characters (distribution-spec); anything much longer is not a tag. */
const MAX_LAST_LENGTH = 256;
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

export function parseLinkHeader(header: string): LinkValue[] {
  return new LinkParser(header).parse();
}

/** Where the upstream's next page starts, when its Link header names an http(s) next page. */
export function nextPagePosition(header: string | undefined): PagePosition | undefined {
  const next = header === undefined ? undefined : parseLinkHeader(header).find((link) => relations(link).includes('next'));
  if (!next) return undefined;
  let url: URL;
  try {
    url = new URL(next.target, 'http://upstream.invalid/');
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  const last = url.searchParams.get('last');
  if (last === null || last.length > MAX_LAST_LENGTH) return undefined;
  const n = url.searchParams.get('n');
  return { n: n !== null && /^[0-9]{1,6}$/.test(n) ? n : undefined, last };
}

/**
 * The Link header for the mirror's answer to `requestUrl` (a tags/list URL on the mirror), or
 * undefined when the upstream's page was the last. Relative, so it works behind any front.
 */
export function mirrorTagsLink(upstreamLink: string | undefined, requestUrl: string): string | undefined {
  const position = nextPagePosition(upstreamLink);
  if (!position) return undefined;
  const request = new URL(requestUrl);
  const query = new URLSearchParams();
  if (position.n !== undefined) query.set('n', position.n);
  query.set('last', position.last);
  const ns = request.searchParams.get('ns');
  if (ns !== null) query.set('ns', ns);
  // The WHATWG parser percent-encodes '<', '>', '"' and spaces in paths, and URLSearchParams
  // everything outside its safe set: the target cannot break out of the angle brackets.
  return `<${request.pathname}?${query.toString()}>; rel="next"`;
}

/** `{ Link }` to merge into the headers of the answer to `requestUrl`, or nothing. */
export function tagsLinkHeader(upstreamLink: string | undefined, requestUrl: string): { Link?: string } {
  const link = mirrorTagsLink(upstreamLink, requestUrl);
  return link === undefined ? {} : { Link: link };
}

function relations(link: LinkValue): string[] {
  return (link.params.rel ?? '').toLowerCase().split(/[ \t]+/);
}

class LinkParser {
  #pos = 0;
  constructor(private readonly text: string) {}

  parse(): LinkValue[] {
    const links: LinkValue[] = [];
    for (;;) {
      this.#skip(/[ \t,]/);
      if (this.text[this.#pos] !== '<') return links; // the end, or malformed from here on: keep what was understood
      const close = this.text.indexOf('>', this.#pos);
      if (close < 0) return links;
      const target = this.text.slice(this.#pos + 1, close);
      this.#pos = close + 1;
      links.push({ target, params: this.#readParams() });
      this.#skipToNextLink();
    }
  }

  #readParams(): Record<string, string> {
    const params: Record<string, string> = {};
    for (;;) {
      this.#skip(/[ \t]/);
      if (this.text[this.#pos] !== ';') return params;
      this.#pos++;
      this.#skip(/[ \t]/);
      const name = this.#readToken().toLowerCase();
      if (!name) return params;
      this.#skip(/[ \t]/);
      let value = '';
      if (this.text[this.#pos] === '=') {
        this.#pos++;
        this.#skip(/[ \t]/);
        value = this.text[this.#pos] === '"' ? this.#readQuoted() : this.#readToken();
      }
      params[name] ??= value;
    }
  }

  /** Past the comma that ends this link-value, skipping what could not be read (quotes respected). */
  #skipToNextLink(): void {
    while (this.#pos < this.text.length && this.text[this.#pos] !== ',') {
      if (this.text[this.#pos] === '"') this.#readQuoted();
      else this.#pos++;
    }
  }

  #skip(pattern: RegExp): void {
    while (this.#pos < this.text.length && pattern.test(this.text[this.#pos]!)) this.#pos++;
  }

  #readToken(): string {
    const start = this.#pos;
    while (this.#pos < this.text.length && TCHAR.test(this.text[this.#pos]!)) this.#pos++;
    return this.text.slice(start, this.#pos);
  }

  /** quoted-string with backslash escapes (RFC 9110 section 5.6.4); unterminated: to the end. */
  #readQuoted(): string {
    let value = '';
    this.#pos++;
    while (this.#pos < this.text.length) {
      const char = this.text[this.#pos++]!;
      if (char === '"') return value;
      value += char === '\\' && this.#pos < this.text.length ? this.text[this.#pos++]! : char;
    }
    return value;
  }
}
