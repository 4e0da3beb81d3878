/**
 * The Node HTTP server of every listener (the public port, a worker's loopback listener, the
 * tests' in-process mirror): @hono/node-server's request listener, and an OCI error body for
 * the requests that never reach the app, which Node and the adapter would otherwise answer with
 * an empty 400 (or just close):
 *   - Node's parser refused the bytes ('clientError'): a malformed request line or header,
 *     Transfer-Encoding with Content-Length (RFC 9112 section 6.3: request smuggling), headers
 *     past `maxHeaderSize` (431), a request that took too long (408);
 *   - an HTTP/1.1 request without Host (RFC 9112 section 3.2: 400, which Node would send
 *     itself, empty, unless `requireHostHeader` is off); HTTP/1.0 has no Host to require, and
 *     such a request (a load balancer's health check) is taken as addressed to `defaultHost`;
 *   - the adapter could build no URL from it: a Host that is no host, the asterisk form, a
 *     backslash in the path;
 *   - CONNECT (405): the mirror is a registry, never a tunnel;
 *   - an Expect other than 100-continue (417, RFC 9110 section 10.1.1).
 * These carry the headers the middleware puts on every answer (API version, nosniff).
 */
import { createServer, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener, RequestError } from '@hono/node-server';
import { MalformedRequestError, UnsupportedError } from '../domain/errors.js';
import { API_VERSION_HEADER } from './middleware/api-version.js';
import { NOSNIFF_HEADER } from './middleware/nosniff.js';
import { closingErrorResponseParts, errorResponseParts, errorResponseText } from './oci-error-response.js';
import type { ServeTlsOptions } from './tls.js';
import type { RequestLane } from './warm-blob-lane.js';

type FetchHandler = Parameters<typeof getRequestListener>[0];

const EVERY_ANSWER_HEADERS = { ...API_VERSION_HEADER, ...NOSNIFF_HEADER };

export interface MirrorHttpServerOptions {
  /** The host of requests that name none (HTTP/1.0): the address listened on. */
  defaultHost: string;
  /** tlsServeOptions(config.tls): https then. */
  tls?: ServeTlsOptions;
  /** Takes the requests it can answer before the app (the warm-blob lane: warm-blob-lane.ts). */
  lane?: RequestLane;
}

/** Not listening yet. */
export function createMirrorHttpServer(fetch: FetchHandler, { defaultHost, tls = {}, lane }: MirrorHttpServerOptions): Server | HttpsServer {
  const adapter = getRequestListener(fetch, { errorHandler: answerUnroutable });
  const hostOfHttp10 = urlHost(defaultHost);
  const listener = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    // An HTTP/1.1 request without Host is the adapter's "Missing host header" (answerUnroutable).
    if (incoming.headers.host === undefined && incoming.httpVersion === '1.0') incoming.headers.host = hostOfHttp10;
    if (lane?.(incoming, outgoing, () => void adapter(incoming, outgoing))) return;
    return adapter(incoming, outgoing);
  };
  const server = 'createServer' in tls ? tls.createServer({ ...tls.serverOptions, requireHostHeader: false }, listener) : createServer({ requireHostHeader: false }, listener);
  server.on('clientError', answerUnparsable);
  server.on('connect', refuseTunnel);
  server.on('checkExpectation', refuseExpectation);
  return server;
}

/** The adapter could not make a Request of it (RequestError); anything else the fetch handler threw. */
function answerUnroutable(error: unknown): Response {
  const cause = error instanceof RequestError ? new MalformedRequestError(`malformed request: ${error.message}`) : error;
  const { status, headers, body } = errorResponseParts(cause);
  return new Response(body, { status, headers: { ...headers, ...EVERY_ANSWER_HEADERS } });
}

/** An IPv6 address goes into a URL's host in brackets. */
function urlHost(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/**
 * As Node's own handler does: the answer goes out only if no byte of an answer in flight on this
 * connection has (a pipelined request behind it was the bad one), then the connection closes.
 */
function answerUnparsable(error: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) socket.write(errorResponseText(malformed(error), EVERY_ANSWER_HEADERS));
  socket.destroy();
}

function malformed(error: NodeJS.ErrnoException): MalformedRequestError {
  if (error.code === 'HPE_HEADER_OVERFLOW') return new MalformedRequestError(`request headers are larger than ${maxHeaderSize} bytes`, 431);
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return new MalformedRequestError('the request did not arrive in time', 408);
  return new MalformedRequestError(`malformed HTTP request${error.code ? ` (${error.code})` : ''}`);
}

/** Node would answer it with an empty 417; the body it did not read ends the connection. */
function refuseExpectation(request: IncomingMessage, response: ServerResponse): void {
  const expectation = String(request.headers.expect).slice(0, 100);
  const { status, headers, body } = closingErrorResponseParts(new MalformedRequestError(`Expect: ${expectation} is not supported (only 100-continue)`, 417), EVERY_ANSWER_HEADERS);
  response.writeHead(status, headers).end(body);
}

/** No method is allowed on an authority-form target, so Allow is empty (RFC 9110 section 10.2.1). */
function refuseTunnel(_request: unknown, socket: Duplex): void {
  if (socket.writable) socket.write(errorResponseText(new UnsupportedError('CONNECT is not supported: this is a registry, not a proxy'), EVERY_ANSWER_HEADERS));
  socket.destroy();
}
