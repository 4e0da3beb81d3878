/**
 * Entity tags of registry content: a blob's or manifest's ETag is its digest in quotes (as
 * distribution sends it), so it never changes for the same bytes. Conditional requests compare
 * against it (RFC 9110 section 13.1).
 */
import type { Context } from 'hono';

export function entityTagOf(digest: string): string {
  return `"${digest}"`;
}

/** An entity tag in an If-None-Match list, with or without the weak prefix; `*` is matched on its own. */
const LISTED_TAG = /(?:W\/)?("[^"]*")/g;

/**
 * True when the request's If-None-Match names `etag` (weak comparison, RFC 9110 section
 * 13.1.2: `W/"x"` matches `"x"`), or is `*`: then a GET or HEAD is answered 304 Not Modified,
 * once the content is known to exist and the client may read it.
 */
export function ifNoneMatchNames(c: Context, etag: string): boolean {
  const header = c.req.header('if-none-match');
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  for (const match of header.matchAll(LISTED_TAG)) if (match[1] === etag) return true;
  return false;
}

/**
 * 304 Not Modified: no body, and of the 200's headers only the validator and the digest (RFC
 * 9110 section 15.4.5: the representation metadata a cache needs to update what it holds).
 */
export function notModified(digest: string): Response {
  return new Response(null, { status: 304, headers: { ETag: entityTagOf(digest), 'Docker-Content-Digest': digest } });
}
