/**
 * The socket-level half of the fake registry: recording each exchange, writing OCI error bodies,
 * parsing a single byte range, and sending a body through an injected fault. Kept apart from the
 * routing so every server (registry, CDN, token) misbehaves in exactly the same way.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ServerName = 'registry' | 'cdn' | 'token';

export interface RequestRecord {
  server: ServerName;
  method: string;
  /** Path without the query string, as received (not decoded). */
  path: string;
  /** Query string without the leading `?`; '' when absent. */
  query: string;
  headers: IncomingHttpHeaders;
  /** Status sent in the response head; 0 while no head was sent (hang on HEAD, reset, in progress). */
  status: number;
  /** performance.now() when the request's head arrived. */
  receivedAt: number;
  /** The client's port: which of its connections (and so which process) sent the request. */
  remotePort?: number;
  /** performance.now() when the response's last byte was handed to the OS; undefined until then (or if cut). */
  finishedAt?: number;
}

export interface Fault {
  /** Answer with this status and an OCI error body instead of the content. */
  status?: number;
  /** Retry-After value sent with `status` (RFC 9110 section 10.2.3), e.g. '2'. */
  retryAfter?: string;
  /**
   * truncate: full Content-Length, half the bytes, then FIN. corrupt: one byte flipped in the middle.
   * reset: head and half the body, then a TCP RST (a HEAD gets the RST and no head at all).
   * slow: bytesPerSecond in 50 ms chunks. hang: head flushed, then silence (a HEAD gets no head at all).
   */
  mode?: 'truncate' | 'corrupt' | 'reset' | 'slow' | 'hang';
  /**
   * GET bodies go without Content-Length (Transfer-Encoding: chunked), as some registry
   * front-ends, proxies and CDNs answer; combines with `mode`.
   */
  chunked?: boolean;
  /** A lying upstream: announce this Content-Length on GET bodies, send the true bytes, then end the connection. */
  announceLength?: number;
  /** For mode 'slow'; default 64 KiB/s. */
  bytesPerSecond?: number;
  /** Wait this long before the response head (HEAD included): a slow upstream answer. */
  delayMs?: number;
  /** Apply this many times, then clear; default forever. */
  times?: number;
}

/** One request in flight: the record tests read, plus the objects needed to answer it. */
export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  record: RequestRecord;
}

export type ExchangeHandler = (exchange: Exchange) => void | Promise<void>;

const SLOW_TICK_MS = 50;
const DEFAULT_BYTES_PER_SECOND = 64 * 1024;

/** Starts an HTTP server on 127.0.0.1 with an OS-chosen port; every request is recorded first. */
export async function listenRecording(name: ServerName, records: RequestRecord[], handle: ExchangeHandler): Promise<{ server: Server; origin: string }> {
  const server = createServer(function recordAndHandle(req, res) {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const record: RequestRecord = { server: name, method: req.method ?? 'GET', path: url.pathname, query: url.search.slice(1), headers: req.headers, status: 0, receivedAt: performance.now(), remotePort: req.socket.remotePort };
    records.push(record);
    res.once('finish', () => (record.finishedAt = performance.now()));
    Promise.resolve(handle({ req, res, url, record })).catch((error: unknown) => {
      if (!res.headersSent) sendError({ req, res, url, record }, 500, 'UNKNOWN', String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}` };
}

export async function closeServer(server: Server): Promise<void> {
  // Hanging and slow responses never finish on their own; cut them so close() resolves.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function writeHead(exchange: Exchange, status: number, headers: OutgoingHttpHeaders): void {
  exchange.record.status = status;
  exchange.res.writeHead(status, headers);
}

/** OCI distribution-spec "Error Codes": a JSON body `{"errors":[{code, message, detail}]}`. */
export function sendError(exchange: Exchange, status: number, code: string, message: string, headers: OutgoingHttpHeaders = {}): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
  writeHead(exchange, status, { ...headers, 'content-type': 'application/json', 'content-length': body.length });
  exchange.res.end(exchange.req.method === 'HEAD' ? undefined : body);
}

/** Answers a status fault; true when one was sent. */
export function sendStatusFault(exchange: Exchange, fault: Fault | undefined, headers: OutgoingHttpHeaders = {}): boolean {
  if (fault?.status === undefined) return false;
  const code = fault.status === 429 ? 'TOOMANYREQUESTS' : fault.status === 503 ? 'UNAVAILABLE' : 'UNKNOWN';
  const retry: OutgoingHttpHeaders = fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter };
  sendError(exchange, fault.status, code, `injected fault: status ${fault.status}`, { ...headers, ...retry });
  return true;
}

/**
 * Sends a complete response whose body is `body` (HEAD: head only), bending it as `fault.mode`
 * says. Content-Length is always the true length, so a truncated body is detectable by the client.
 */
export function sendBody(exchange: Exchange, status: number, headers: OutgoingHttpHeaders, body: Buffer, fault: Fault | undefined): void {
  if (fault?.delayMs) {
    setTimeout(() => sendBody(exchange, status, headers, body, { ...fault, delayMs: undefined }), fault.delayMs);
    return;
  }
  const isHead = exchange.req.method === 'HEAD';
  const fullHeaders = { ...headers, ...lengthHeader(body, fault, isHead) };
  const socket = exchange.res.socket;
  if (fault?.mode === 'hang' && isHead) return; // a HEAD's head is the whole answer; withhold it
  if (fault?.mode === 'reset' && isHead) {
    socket?.resetAndDestroy();
    return;
  }
  writeHead(exchange, status, fullHeaders);
  if (isHead) {
    exchange.res.end();
    return;
  }
  switch (fault?.mode) {
    case 'hang':
      exchange.res.flushHeaders();
      return;
    case 'truncate':
      exchange.res.write(body.subarray(0, Math.floor(body.length / 2)), () => socket?.end());
      return;
    case 'reset':
      exchange.res.write(body.subarray(0, Math.floor(body.length / 2)), () => socket?.resetAndDestroy());
      return;
    case 'corrupt':
      exchange.res.end(corrupted(body));
      return;
    case 'slow':
      void sendSlowly(exchange, body, fault.bytesPerSecond ?? DEFAULT_BYTES_PER_SECOND);
      return;
    default:
      if (fault?.announceLength !== undefined) exchange.res.write(body, () => socket?.end());
      else if (fault?.chunked) sendInThirds(exchange, body);
      else exchange.res.end(body);
  }
}

/** The true Content-Length, none (chunked) or a lie, as the fault says; a HEAD always tells the truth. */
function lengthHeader(body: Buffer, fault: Fault | undefined, isHead: boolean): OutgoingHttpHeaders {
  if (isHead) return { 'content-length': body.length };
  if (fault?.announceLength !== undefined) return { 'content-length': fault.announceLength };
  return fault?.chunked ? {} : { 'content-length': body.length };
}

function sendInThirds(exchange: Exchange, body: Buffer): void {
  const third = Math.max(1, Math.ceil(body.length / 3));
  for (let offset = 0; offset < body.length; offset += third) exchange.res.write(body.subarray(offset, offset + third));
  exchange.res.end();
}

function corrupted(body: Buffer): Buffer {
  if (body.length === 0) return body;
  const copy = Buffer.from(body);
  const middle = Math.floor(copy.length / 2);
  copy[middle] = copy[middle]! ^ 0xff;
  return copy;
}

async function sendSlowly(exchange: Exchange, body: Buffer, bytesPerSecond: number): Promise<void> {
  const { res } = exchange;
  const chunkSize = Math.max(1, Math.floor((bytesPerSecond * SLOW_TICK_MS) / 1000));
  res.flushHeaders();
  for (let offset = 0; offset < body.length; offset += chunkSize) {
    if (offset > 0) await new Promise((resolve) => setTimeout(resolve, SLOW_TICK_MS));
    if (res.destroyed) return; // client went away or the fake closed
    res.write(body.subarray(offset, offset + chunkSize));
  }
  res.end();
}

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * RFC 9110 section 14.2: a single `bytes=` range. Multiple ranges and malformed values are
 * ignored (a server may always answer 200 with the whole representation).
 */
export function parseRange(header: string | undefined, length: number): RangeResult {
  const match = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return { kind: 'full' };
  if (length === 0) return { kind: 'unsatisfiable' };
  const [, first = '', last = ''] = match;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(first);
  const end = last === '' ? length - 1 : Math.min(Number(last), length - 1);
  if (start >= length) return { kind: 'unsatisfiable' };
  if (end < start) return { kind: 'full' };
  return { kind: 'partial', start, end };
}

/** Serves blob bytes with Range support; shared by the registry and the CDN. */
export function sendBlobBytes(exchange: Exchange, bytes: Buffer, headers: OutgoingHttpHeaders, fault: Fault | undefined): void {
  const base = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  const range = parseRange(exchange.req.headers.range, bytes.length);
  if (range.kind === 'unsatisfiable') {
    writeHead(exchange, 416, { ...base, 'content-range': `bytes */${bytes.length}`, 'content-length': 0 });
    exchange.res.end();
    return;
  }
  if (range.kind === 'full') {
    sendBody(exchange, 200, base, bytes, fault);
    return;
  }
  const contentRange = `bytes ${range.start}-${range.end}/${bytes.length}`;
  sendBody(exchange, 206, { ...base, 'content-range': contentRange }, bytes.subarray(range.start, range.end + 1), fault);
}
