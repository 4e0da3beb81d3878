/**
 * Lets the registry service know when a client closed its connection before its response was
 * sent whole (pull-through/registry-service.ts BlobRequestOptions). Read from the Node
 * ServerResponse ('close' before 'finish'), not from the Request @hono/node-server hands Hono,
 * whose `signal` makes it build a full WHATWG Request.
 */
import type { Context } from 'hono';
import { nodeResponseOf } from './node-response.js';

export function clientGoneSignal(c: Context): AbortSignal {
  const outgoing = nodeResponseOf(c);
  if (!outgoing) return c.req.raw.signal;
  const controller = new AbortController();
  const gone = () => !outgoing.writableFinished && controller.abort(new Error('the client closed its connection'));
  if (outgoing.closed) gone();
  else outgoing.once('close', gone);
  return controller.signal;
}
