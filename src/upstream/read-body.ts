/**
 * Buffers a small upstream body (manifest, tag list, token), refusing more than `limit` bytes. A
 * body without Content-Length (chunked) is read up to the limit. Leaving the loop early (too
 * large, aborted) destroys the body through its async iterator, which handles the error.
 */
import { UpstreamBadResponseError } from '../domain/errors.js';
import { discardBody, type HopResponse, type UpstreamResponse } from './http-dispatcher.js';
import { headerValue, networkFailure } from './upstream-failures.js';

export function contentLength(response: Pick<HopResponse, 'headers'>): number | undefined {
  const value = headerValue(response.headers, 'content-length');
  return value !== undefined && /^[0-9]+$/.test(value) ? Number(value) : undefined;
}

export async function readBodyLimited(response: UpstreamResponse, limit: number, what: string, signal?: AbortSignal): Promise<Buffer> {
  const tooLarge = () => new UpstreamBadResponseError(`${what}: the upstream body is larger than the ${limit}-byte limit`);
  // A declared length over the limit is refused before a byte is read (dump destroys such a body, its error handled).
  if ((contentLength(response) ?? 0) > limit) {
    discardBody(response);
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > limit) throw tooLarge(); // leaving the loop destroys the body
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    throw networkFailure(error, what, signal);
  }
  return Buffer.concat(chunks, size);
}
