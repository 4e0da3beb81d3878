/**
 * Sends a blob answer by the kind of its body (pull-through/registry-service.ts):
 *   file     -> sendfile(2) or a user-space copy (send-file.ts), or nginx X-Accel-Redirect for
 *               cache hits when nginx asked (accel-redirect.ts);
 *   growing  -> a fill clients follow: sendfile as the bytes land, or a stream follower; without
 *               a known size (the upstream sent no Content-Length) the body goes out chunked,
 *               its last byte and final chunk only after the digest check;
 *   stream   -> piped as it is (already limited to the range);
 *   redirect -> 307 to where the client can fetch the bytes itself.
 * Ranges are answered 206 with Content-Range (RFC 9110 section 14.4).
 */
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { GrowingFile } from '../storage/content-store.js';
import { followGrowingFile } from '../storage/growing-file.js';
import { bodyStream } from '../storage/read-content.js';
import type { BlobAnswer } from '../pull-through/registry-service.js';
import { accelRedirect } from './accel-redirect.js';
import { nodeResponseOf } from './node-response.js';
import { sendFileRange, sendGrowingFileRange, zeroCopySocket } from './send-file.js';
import { sendStream } from './send-stream.js';
import type { SendWatchdog } from './send-watchdog.js';

export interface BlobSendOptions {
  /** Config `sendfile`. */
  sendfile: boolean;
  /** Set when nginx in front asked for X-Accel-Redirect with the configured prefix. */
  accelPrefix?: string;
  /** Cuts off clients that stop reading (`listen.sendTimeoutSeconds`). */
  watchdog?: SendWatchdog;
}

interface Framing {
  status: number;
  headers: Record<string, string>;
  start: number;
  /** Inclusive; Infinity while the size is not known. */
  end: number;
}

export function sendBlobAnswer(c: Context, answer: BlobAnswer, headers: Record<string, string>, options: BlobSendOptions): Response {
  const { body } = answer;
  if (body.kind === 'redirect') {
    answer.release();
    return new Response(null, { status: 307, headers: { ...headers, Location: body.url, 'Content-Length': '0' } });
  }
  if (options.accelPrefix && body.kind === 'file' && answer.origin === 'cache') {
    // nginx applies the Range header itself to the file it serves.
    return accelRedirect(c, options.accelPrefix, body.relativePath, { ...headers, 'Content-Length': String(body.size) }, answer.release);
  }
  const framing = frame(answer, headers);
  if (answer.size === 0) {
    answer.release();
    return new Response(null, { status: 200, headers: framing.headers });
  }
  const outgoing = nodeResponseOf(c);
  if (outgoing && options.watchdog) options.watchdog.watch(outgoing);
  switch (body.kind) {
    case 'file':
      return sendFile(c, framing, body.path, answer.release, options.sendfile);
    case 'stream':
      return sendStream(c, framing.status, framing.headers, body.stream, answer.release);
    case 'growing':
      return sendGrowing(c, framing, body.file, answer, options.sendfile);
  }
}

function frame(answer: BlobAnswer, base: Record<string, string>): Framing {
  const start = answer.range?.start ?? 0;
  const end = answer.range?.end ?? (answer.size === undefined ? Infinity : answer.size - 1);
  const headers = { ...base };
  if (answer.size !== undefined) headers['Content-Length'] = String(end - start + 1);
  if (answer.range) headers['Content-Range'] = `bytes ${start}-${end}/${answer.size}`;
  return { status: answer.range ? 206 : 200, headers, start, end };
}

function sendFile(c: Context, { status, headers, start, end }: Framing, path: string, done: (error?: Error) => void, sendfile: boolean): Response {
  const outgoing = nodeResponseOf(c);
  if (!outgoing) return sendStream(c, status, headers, bodyStream({ kind: 'file', size: end + 1, path, relativePath: '' }, { start, end }), done);
  outgoing.writeHead(status, headers);
  sendFileRange(outgoing, { path, start, end, done, sendfile });
  return RESPONSE_ALREADY_SENT;
}

function sendGrowing(c: Context, { status, headers, start, end }: Framing, file: GrowingFile, answer: BlobAnswer, sendfile: boolean): Response {
  const outgoing = nodeResponseOf(c);
  const socket = end !== Infinity && outgoing ? zeroCopySocket(outgoing, sendfile) : undefined;
  if (!outgoing || !socket) return sendStream(c, status, headers, followGrowingFile(file, start, end), answer.release);
  outgoing.writeHead(status, headers);
  sendGrowingFileRange(outgoing, socket, { file, name: `download of ${headers['Docker-Content-Digest'] ?? 'a blob'}`, start, end, done: answer.release });
  return RESPONSE_ALREADY_SENT;
}
