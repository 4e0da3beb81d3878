/**
 * Sends a response body straight from a Node stream to the socket. Going through a web
 * ReadableStream costs a copy and a promise per chunk on the hottest path the mirror has, so
 * when @hono/node-server hands us the ServerResponse we pipe into it directly.
 *
 * If the source fails (the upstream broke off, the digest was wrong), pipeline() destroys the
 * response: the client sees the connection close before Content-Length bytes (or before the
 * last chunk of a chunked body), never a clean end.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { nodeResponseOf } from './node-response.js';

export interface SendStreamOptions {
  /**
   * Write the head at once rather than with the body's first bytes (Node's default): for a body
   * whose first bytes may be long in coming, whose reader is waiting for the head.
   */
  headNow?: boolean;
}

/** `done` runs once the body is no longer read, with the source's error if there was one. */
export function sendStream(c: Context, status: number, headers: Record<string, string>, body: Readable, done: (error?: Error) => void = () => {}, options: SendStreamOptions = {}): Response {
  let failure: Error | undefined;
  body.once('error', (error) => (failure = error)).once('close', () => done(failure));
  const outgoing = nodeResponseOf(c);
  if (!outgoing) return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
  outgoing.writeHead(status, headers);
  if (options.headNow) outgoing.flushHeaders();
  pipeline(body, outgoing).catch(() => {
    // Client gone or source failed: both ends are destroyed by pipeline already.
  });
  return RESPONSE_ALREADY_SENT;
}
