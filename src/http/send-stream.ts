/**
 * Sends a blob body straight from a Node stream to the socket. Going through a web
 * ReadableStream costs a copy and a promise per chunk on the hottest path the mirror has, so
 * when @hono/node-server hands us the ServerResponse we pipe into it directly.
 *
 * If the source fails (the upstream broke off, the digest was wrong), pipeline() destroys the
 * response: the client sees the connection close before Content-Length bytes, never a clean end.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { nodeResponseOf } from './node-response.js';
import { sendFileRange, sendGrowingFileRange, zeroCopySocket } from './send-file.js';
import type { ZeroCopyBody } from './send-file-zero-copy.js';

export function sendStream(c: Context, status: number, headers: Record<string, string>, body: Readable): Response {
  const outgoing = nodeResponseOf(c);
  if (!outgoing) return new Response(Readable.toWeb(body) as ReadableStream, { status, headers });
  outgoing.writeHead(status, headers);
  pipeline(body, outgoing).catch(() => {
    // Client gone or source failed: both ends are destroyed by pipeline already.
  });
  return RESPONSE_ALREADY_SENT;
}

export interface FileBody {
  path: string;
  start: number;
  end: number;
  /** Runs once the file is no longer read, with the read error if there was one. */
  done: (error?: Error) => void;
  /** Whether sendfile(2) may be used (config `sendfile`). */
  sendfile: boolean;
}

/** A blob still downloading (`name` in errors), with the same range and `done` contract as FileBody. */
export type GrowingFileBody = ZeroCopyBody & { sendfile: boolean };

/** Like sendStream, for a blob still downloading: sent by sendfile when the socket allows (send-file.ts), else streamed from `fallback`. */
export function sendGrowingFile(c: Context, status: number, headers: Record<string, string>, { sendfile, ...body }: GrowingFileBody, fallback: () => Readable): Response {
  const outgoing = nodeResponseOf(c);
  const socket = outgoing && zeroCopySocket(outgoing, sendfile);
  if (!outgoing || !socket) return sendStream(c, status, headers, fallback());
  outgoing.writeHead(status, headers);
  sendGrowingFileRange(outgoing, socket, body);
  return RESPONSE_ALREADY_SENT;
}

/** Like sendStream, for a published file: sent by send-file.ts (sendfile or a copy) when the socket is at hand. */
export function sendFile(c: Context, status: number, headers: Record<string, string>, file: FileBody, fallback: () => Readable): Response {
  const outgoing = nodeResponseOf(c);
  if (!outgoing) return sendStream(c, status, headers, fallback());
  outgoing.writeHead(status, headers);
  sendFileRange(outgoing, file);
  return RESPONSE_ALREADY_SENT;
}
