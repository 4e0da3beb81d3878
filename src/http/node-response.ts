/**
 * The Node ServerResponse behind a Hono request, when @hono/node-server serves it. Blob bodies
 * are written to it directly (send-stream.ts), bypassing Hono's Response, so anything every
 * answer must carry is set on it as well (middleware/api-version.ts, middleware/access-log.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';

export function nodeResponseOf(c: Context): ServerResponse | undefined {
  return (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
}
