/**
 * A request body as a stream of bytes, and what its headers say about its length. Under
 * @hono/node-server the Node request itself is read (no web-stream conversion in between, which
 * costs a copy per chunk on the upload path); elsewhere (app.fetch in tests) the Request's body.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { BlobUploadInvalidError, SizeInvalidError } from '../domain/errors.js';

export function requestBody(c: Context): AsyncIterable<Uint8Array> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && !incoming.readableEnded) return incoming;
  return c.req.raw.body ?? emptyBody();
}

/** Content-Length as a number; undefined when absent (Transfer-Encoding: chunked). */
export function contentLength(c: Context): number | undefined {
  const header = c.req.header('content-length');
  if (header === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(header.trim())) throw new SizeInvalidError(`Content-Length ${JSON.stringify(header.slice(0, 40))} is not a byte count`);
  return Number(header.trim());
}

/**
 * An upload chunk's Content-Range, inclusive at both ends (distribution-spec "Pushing a blob in
 * chunks": `<start>-<end>`); `bytes ` and a `/<total>` suffix as some clients send them are
 * accepted too.
 */
export function contentRange(c: Context): { start: number; end: number } | undefined {
  const header = c.req.header('content-range');
  if (header === undefined) return undefined;
  const match = /^\s*(?:bytes[ =])?\s*([0-9]{1,15})-([0-9]{1,15})(?:\/(?:[0-9]{1,15}|\*))?\s*$/i.exec(header);
  if (!match) throw new BlobUploadInvalidError(`Content-Range ${JSON.stringify(header.slice(0, 60))} is not <start>-<end>`);
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (end < start) throw new BlobUploadInvalidError(`Content-Range ${start}-${end} ends before it starts`);
  return { start, end };
}

/** Reads a small body whole (a manifest), refusing more than `limit` bytes without reading them all. */
export async function readSmallBody(c: Context, limit: number, tooLarge: (size: number) => Error): Promise<Buffer> {
  const announced = contentLength(c);
  if (announced !== undefined && announced > limit) throw tooLarge(announced);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of requestBody(c)) {
    size += chunk.byteLength;
    if (size > limit) throw tooLarge(size);
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, size);
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}
