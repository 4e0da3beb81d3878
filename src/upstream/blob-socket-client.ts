/**
 * The HTTP/1.1 client for blob GETs: every hop of one (the registry's 401 and 307, the CDN's
 * 200). Each connection reads into a buffer of its own, reused for every read (net and tls
 * `onread`), and the body's bytes go from that buffer straight to the cache fill (`deliverTo`),
 * so a miss allocates nothing per read. While the fill holds a chunk (a write still under way)
 * the connection does not read, so the chunk's bytes stay as they are. undici, which every other
 * call still uses, allocates a 64 KiB buffer for each socket read and copies it into its
 * parser's WebAssembly memory: reading a 120 MiB blob from a loopback registry cost it 1.0 s of
 * CPU against 0.18-0.31 s with a reused buffer (docs/benchmarks.md, "a miss without undici").
 *
 * Connections come from the same guarded connector as undici's (dial-guard.ts), with its
 * timeouts, TLS and SSRF checks, and are kept alive per origin for the next blob. A reused
 * connection that fails before its answer starts is replaced once (a GET may be repeated;
 * RFC 9110 section 9.2.2). Timeouts are undici's: `headersMs` until the head, `idleMs` of
 * silence while the body streams (not counted while the fill itself holds the body back).
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { buildConnector } from 'undici';
import { UpstreamBadResponseError } from '../domain/errors.js';
import { DialRefusedError } from './dial-guard.js';
import { USER_AGENT, type HopRequest, type UpstreamTimeouts } from './http-dispatcher.js';
import { Http1ParseError, Http1ResponseParser, type ResponseHead } from './http1-response-parser.js';
import { networkFailure } from './upstream-failures.js';

/**
 * Takes one chunk, a view of the connection's read buffer: valid during the call, and until the
 * promise the sink returns settles (the connection does not read meanwhile), not after.
 */
export type BodySink = (chunk: Buffer) => Promise<void> | undefined;

/** A body whose chunks can go straight to a sink, without a stream's buffering (body-pump.ts). */
export interface DirectBody {
  deliverTo(sink: BodySink): Promise<void>;
}

export function isDirectBody(body: unknown): body is DirectBody {
  return typeof (body as Partial<DirectBody> | null)?.deliverTo === 'function';
}

export interface SocketResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: SocketBody;
}

/**
 * A connection's read buffer: one read takes at most this much. Reading 126 MB from loopback
 * took 0.31 s of CPU with 64 KiB, 0.22 s with 256 KiB, 0.18 s with 1 MiB (docs/benchmarks.md);
 * a TLS read is one record (16 KiB) whatever the size.
 */
const READ_BUFFER_BYTES = 512 * 1024;
/** An idle kept-alive connection is closed after this long (undici's default keepAliveTimeout). */
const KEEP_ALIVE_MS = 4_000;
/** A body we do not want is read to its end to keep the connection only up to this size. */
const DRAIN_LIMIT_BYTES = 128 * 1024;
const ALLOWED_HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

const kExchange = Symbol('blob-socket-exchange');
/** The listeners a pooled connection has while idle, taken off when it is reused. */
const kIdleListeners = Symbol('blob-socket-idle-listeners');
type ClientSocket = Socket & { [kExchange]?: SocketBody; [kIdleListeners]?: { timeout: () => void; close: () => void } };

/**
 * The socket options that make a connection read into a buffer of its own and hand every read to
 * its exchange. Node asks `buffer` for the buffer of a new socket, and again right after each
 * read's callback for the buffer of the next read (without saying which socket asks: the
 * callback of that same socket has just run, and `buffer` hands its buffer back to it).
 */
export function blobSocketReads(): { onread: { buffer: () => Buffer; callback: (this: ClientSocket, length: number, buffer: Buffer) => boolean } } {
  return { onread: { buffer: nextReadBuffer, callback: onSocketRead } };
}

/** The buffer the read callback that just ran was given: its socket's, to read into again. */
let justRead: Buffer | undefined;

function nextReadBuffer(): Buffer {
  const buffer = justRead ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
  justRead = undefined;
  return buffer;
}

function onSocketRead(this: ClientSocket, length: number, buffer: Buffer): boolean {
  justRead = buffer;
  const exchange = this[kExchange];
  // An idle kept-alive connection has nothing to say: it is not reused after speaking.
  if (exchange === undefined) {
    this.destroy();
    return false;
  }
  try {
    return exchange.onSocketData(buffer.subarray(0, length));
  } catch (error) {
    // Never out of a read callback (Node would not ask for the next buffer): the socket is done.
    this.destroy(error as Error);
    return false;
  }
}

class HeadersTimeoutError extends Error {
  override name = 'HeadersTimeoutError';
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
}

class BodyTimeoutError extends Error {
  override name = 'BodyTimeoutError';
  readonly code = 'UND_ERR_BODY_TIMEOUT';
}

class PrematureCloseError extends Error {
  override name = 'PrematureCloseError';
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
}

export class BlobSocketClient {
  readonly #idle = new Map<string, ClientSocket[]>();
  #closed = false;

  constructor(private readonly connect: buildConnector.connector, private readonly timeouts: Pick<UpstreamTimeouts, 'headersMs' | 'idleMs'>) {}

  /** One GET; rejects with domain errors as undici's sender does (http-dispatcher.ts sendOnce). */
  async send(request: HopRequest, what: string): Promise<SocketResponse> {
    const head = requestHead(request, what);
    request.signal?.throwIfAborted();
    for (let attempt = 1; ; attempt++) {
      // A retry dials afresh: the other idle connections are as old as the one that failed.
      const pooled = attempt === 1 ? this.#takeIdle(request.url.origin) : undefined;
      try {
        const socket = pooled ?? (await this.#dial(request.url));
        return await new SocketBody(socket, this, request.url.origin, this.timeouts).exchange(head, request.signal);
      } catch (error) {
        if (pooled !== undefined && attempt === 1 && isStaleConnection(error) && !request.signal?.aborted) continue;
        if (error instanceof DialRefusedError || error instanceof Http1ParseError) throw new UpstreamBadResponseError(`${what}: ${error.message}`);
        throw networkFailure(error, `${what} (${request.url.host})`, request.signal);
      }
    }
  }

  /** Closes the idle connections; bodies still streaming finish on theirs. */
  close(): void {
    this.#closed = true;
    for (const sockets of this.#idle.values()) for (const socket of sockets) socket.destroy();
    this.#idle.clear();
  }

  /** A connection whose response was read to its end, ready for the next request to `origin`. */
  release(origin: string, socket: ClientSocket): void {
    if (this.#closed || socket.destroyed) return void socket.destroy();
    const sockets = this.#idle.get(origin) ?? [];
    this.#idle.set(origin, sockets);
    sockets.push(socket);
    const forget = () => {
      const index = sockets.indexOf(socket);
      if (index >= 0) sockets.splice(index, 1);
      if (sockets.length === 0 && this.#idle.get(origin) === sockets) this.#idle.delete(origin);
    };
    const listeners = { timeout: () => socket.destroy(), close: forget };
    socket[kIdleListeners] = listeners;
    socket.setTimeout(KEEP_ALIVE_MS);
    socket.once('timeout', listeners.timeout).once('close', listeners.close).on('error', ignoreError);
    // An idle connection does not keep a process alive (a CLI command that has finished).
    socket.unref();
    socket.resume();
  }

  #takeIdle(origin: string): ClientSocket | undefined {
    const sockets = this.#idle.get(origin);
    let socket = sockets?.pop();
    while (socket !== undefined && socket.destroyed) socket = sockets?.pop();
    if (socket === undefined) return undefined;
    const listeners = socket[kIdleListeners];
    if (listeners) socket.off('timeout', listeners.timeout).off('close', listeners.close).off('error', ignoreError);
    socket[kIdleListeners] = undefined;
    socket.setTimeout(0);
    socket.ref();
    return socket;
  }

  #dial(url: URL): Promise<ClientSocket> {
    const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return new Promise((resolve, reject) => {
      this.connect({ hostname, host: url.host, protocol: url.protocol, port: url.port, servername: undefined, localAddress: null, httpSocket: undefined }, (error, socket) => {
        if (error) return reject(error);
        resolve(socket as ClientSocket);
      });
    });
  }
}

/**
 * One response on one connection: the head as a promise, then the body as a Readable (tests and
 * any ordinary reader, which may keep its chunks: each is copied) or through `deliverTo` (the
 * cache fill; no copies). Bytes that arrive before the body has a reader are held as views of
 * the read buffer, the connection not reading until they are taken; the connection goes back to
 * the pool only once the reader has taken the last of them.
 */
export class SocketBody extends Readable implements DirectBody {
  readonly #parser: Http1ResponseParser;
  #head: ResponseHead | undefined;
  #answer: { resolve: (response: SocketResponse) => void; reject: (error: Error) => void } | undefined;
  #headersTimer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  /** Views of the read buffer no reader has taken yet, in order. */
  readonly #held: Buffer[] = [];
  #sink: BodySink | undefined;
  #delivery: { resolve: () => void; reject: (error: Error) => void } | undefined;
  #sinkWaiting = false;
  #readableWanted = false;
  #holdBack = false;
  #ended = false;
  #failed = false;
  #released = false;
  /** Whether any byte of the answer arrived: before that, a kept-alive connection may just have gone stale. */
  #answered = false;

  constructor(private readonly socket: ClientSocket, private readonly client: BlobSocketClient, private readonly origin: string, private readonly timeouts: Pick<UpstreamTimeouts, 'headersMs' | 'idleMs'>) {
    super();
    this.#parser = new Http1ResponseParser({
      onHead: (head) => this.#onHead(head),
      onBody: (chunk) => this.#onBody(chunk),
      onEnd: () => this.#onEnd(),
    });
    // Its readers see its error (deliverTo rejects, a stream reader gets it); an error nobody
    // listens to must not end the process (issue 12 item 1), as for undici's bodies (guardBody).
    this.on('error', ignoreError);
  }

  exchange(head: string, signal: AbortSignal | undefined): Promise<SocketResponse> {
    return new Promise<SocketResponse>((resolve, reject) => {
      this.#answer = { resolve, reject };
      if (signal?.aborted) return this.#fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      this.#signal = signal;
      signal?.addEventListener('abort', this.#onAbort, { once: true });
      const socket = this.socket;
      socket[kExchange] = this;
      socket.on('error', this.#onSocketError).on('end', this.#onSocketEnd).on('close', this.#onSocketClose).on('timeout', this.#onIdle);
      this.#headersTimer = setTimeout(() => this.#fail(new HeadersTimeoutError(`no response head within ${this.timeouts.headersMs} ms`)), this.timeouts.headersMs);
      socket.write(head);
      socket.resume();
    });
  }

  /** A read of this connection's socket; false stops reading until the body is wanted again. */
  onSocketData(data: Buffer): boolean {
    this.#answered = true;
    try {
      this.#parser.push(data);
    } catch (error) {
      this.#fail(error as Error);
      return false;
    }
    if (this.#failed) return false;
    // Only once the whole read parsed: a server that says more after the end is not reused.
    this.#releaseIfDone();
    // Pooled, it reads on, to see the server close it; otherwise not past the end.
    if (this.#ended) return this.#released;
    return !this.#holdBack;
  }

  deliverTo(sink: BodySink): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#sink = sink;
      this.#delivery = { resolve, reject };
      if (this.destroyed) return reject(this.errored ?? new PrematureCloseError('the body was destroyed before it was read'));
      this.#flushToSink();
    });
  }

  /** Reads and drops a small body so the connection is kept; a larger one closes it. */
  dump(): Promise<void> {
    let dropped = 0;
    return this.deliverTo((chunk) => {
      dropped += chunk.length;
      if (dropped > DRAIN_LIMIT_BYTES) this.destroy();
      return undefined;
    }).catch(() => undefined);
  }

  override _read(): void {
    this.#readableWanted = true;
    while (this.#held.length > 0) {
      if (!this.push(Buffer.from(this.#held.shift()!))) return;
    }
    if (this.#ended) {
      this.push(null);
      return this.#releaseIfDone();
    }
    this.#wantMore();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#ended && error === null) {
      // Read to its end: a kept-alive connection goes back to the pool, any other is closed.
      this.#releaseIfDone();
      this.#detach(true);
      return callback(null);
    }
    this.#failed = true;
    this.#delivery?.reject(error ?? new PrematureCloseError('the body was destroyed before its end'));
    this.#delivery = undefined;
    this.#detach(true);
    callback(error);
  }

  #onHead(head: ResponseHead): void {
    clearTimeout(this.#headersTimer);
    this.#head = head;
    this.socket.setTimeout(this.timeouts.idleMs);
    this.#answer?.resolve({ statusCode: head.statusCode, headers: head.headers, body: this });
    this.#answer = undefined;
  }

  #onBody(chunk: Buffer): void {
    if (this.#failed) return;
    if (this.#sink !== undefined && this.#held.length === 0 && !this.#sinkWaiting) {
      this.#callSink(chunk);
      return;
    }
    if (this.#readableWanted && this.#held.length === 0) {
      if (!this.push(Buffer.from(chunk))) this.#pause();
      return;
    }
    this.#held.push(chunk);
    this.#pause();
  }

  #onEnd(): void {
    this.#ended = true;
    if (this.#sink !== undefined) this.#flushToSink();
    else if (this.#readableWanted && this.#held.length === 0) this.push(null);
  }

  #callSink(chunk: Buffer): void {
    let waiting: Promise<void> | undefined;
    try {
      waiting = this.#sink!(chunk);
    } catch (error) {
      return this.#fail(error as Error);
    }
    if (waiting === undefined) return;
    this.#sinkWaiting = true;
    this.#pause();
    waiting.then(() => {
      this.#sinkWaiting = false;
      this.#flushToSink();
    }, (error: unknown) => this.#fail(error as Error));
  }

  #flushToSink(): void {
    while (this.#held.length > 0 && !this.#sinkWaiting && !this.#failed) this.#callSink(this.#held.shift()!);
    if (this.#sinkWaiting || this.#failed || this.#held.length > 0) return;
    if (!this.#ended) return this.#wantMore();
    this.#delivery?.resolve();
    this.#delivery = undefined;
    this.#releaseIfDone();
    if (!this.destroyed) this.push(null);
    this.destroy();
  }

  /** The whole response is read and taken: a kept-alive connection goes back to the pool. */
  #releaseIfDone(): void {
    if (this.#released || this.#failed || !this.#ended || !this.#head?.keepAlive) return;
    if (this.#held.length > 0 || this.#sinkWaiting) return;
    this.#detach(false);
  }

  #pause(): void {
    this.#holdBack = true;
  }

  /** The reader takes more: read on, with the idle clock started afresh (a pause was ours). */
  #wantMore(): void {
    if (!this.#holdBack || this.#released) return;
    this.#holdBack = false;
    this.socket.setTimeout(this.timeouts.idleMs);
    this.socket.resume();
  }

  /** Hands the connection back (kept alive) or closes it; the body no longer hears from it. */
  #detach(close: boolean): void {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#headersTimer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    const socket = this.socket;
    socket.off('error', this.#onSocketError).off('end', this.#onSocketEnd).off('close', this.#onSocketClose).off('timeout', this.#onIdle);
    socket[kExchange] = undefined;
    socket.setTimeout(0);
    if (close) socket.on('error', ignoreError).destroy();
    else this.client.release(this.origin, socket);
  }

  #fail(error: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#detach(true);
    if (this.#answer !== undefined) {
      const stale = !this.#answered && isSocketLevel(error);
      this.#answer.reject(stale ? Object.assign(error, { [kStale]: true }) : error);
      this.#answer = undefined;
      return;
    }
    this.destroy(error);
  }

  readonly #onAbort = () => this.#fail(this.#signal?.reason instanceof Error ? this.#signal.reason : new Error('aborted'));
  readonly #onSocketError = (error: Error) => this.#fail(error);
  readonly #onSocketEnd = () => {
    // Closed before answering: a network failure (a kept-alive connection the server dropped).
    if (this.#head === undefined) return this.#fail(new PrematureCloseError('the upstream closed the connection before its response head'));
    try {
      this.#parser.finish();
    } catch (error) {
      this.#fail(error as Error);
    }
  };
  readonly #onSocketClose = () => {
    if (!this.#parser.done) this.#fail(new PrematureCloseError('the upstream closed the connection before the end of its response'));
  };
  readonly #onIdle = () => {
    // Held back by the reader, not silent: its own clocks apply (the fill's stall watchdog).
    if (this.#holdBack) return;
    this.#fail(new BodyTimeoutError(`no body bytes for ${this.timeouts.idleMs} ms`));
  };
}

const kStale = Symbol('stale-connection');

function isStaleConnection(error: unknown): boolean {
  return (error as { [kStale]?: boolean } | null)?.[kStale] === true;
}

function isSocketLevel(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return error instanceof PrematureCloseError || code === 'ECONNRESET' || code === 'EPIPE';
}

function requestHead(request: HopRequest, what: string): string {
  if (request.method !== 'GET') throw new TypeError(`${what}: the blob client sends GETs only`);
  const lines = [`GET ${request.url.pathname}${request.url.search} HTTP/1.1`, `host: ${request.url.host}`, `user-agent: ${USER_AGENT}`];
  for (const [name, value] of Object.entries(request.headers)) {
    // A value with CR or LF would add header lines of its own (a token is the upstream's text).
    if (!ALLOWED_HEADER_VALUE.test(value)) throw new UpstreamBadResponseError(`${what}: refusing to send an invalid ${name} header value`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function ignoreError(): void {}
