/**
 * An HTTP/1.1 response parser for blob bodies read into a reused buffer (blob-socket-client.ts).
 * It takes each socket read as it lands and hands body bytes on as slices of that read, so body
 * bytes are never copied or allocated here; whoever takes them uses them before `push` returns.
 *
 * RFC 9112: status line (section 4), field lines (section 5; obsolete line folding is refused,
 * section 5.2), message body length (section 6.3: Transfer-Encoding chunked wins over
 * Content-Length, differing Content-Lengths are an error, no framing reads until the close),
 * chunked coding (section 7.1; extensions and trailers are read and dropped), and interim 1xx
 * responses, which are skipped (RFC 9110 section 15.2). Anything malformed throws
 * Http1ParseError: the response is the upstream's fault, and the connection is not reused.
 */

export interface ResponseHead {
  statusCode: number;
  /** Lower-case names; a repeated field becomes an array, as in Node's and undici's headers. */
  headers: Record<string, string | string[]>;
  /** The connection may carry another request once this body is read (HTTP/1.1 without `Connection: close`). */
  keepAlive: boolean;
}

export interface ResponseEvents {
  onHead(head: ResponseHead): void;
  /** A slice of the read passed to `push`: valid only until this call returns. */
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

export class Http1ParseError extends Error {
  override name = 'Http1ParseError';
  readonly code = 'ERR_UPSTREAM_HTTP';
}

/** The most a status line and its fields may take (undici and Node allow 16 KiB by default). */
export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: [^\r\n]*)?$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CRLF_CRLF = Buffer.from('\r\n\r\n');

type BodyState =
  | { kind: 'head' }
  | { kind: 'length'; remaining: number }
  | { kind: 'close' }
  | { kind: 'chunk-size'; line: string }
  | { kind: 'chunk-data'; remaining: number }
  | { kind: 'chunk-end'; seen: number }
  | { kind: 'trailers'; line: string; total: number }
  | { kind: 'done' };

export class Http1ResponseParser {
  #state: BodyState = { kind: 'head' };
  #head: Buffer | undefined;

  /** `bodiless`: the request was a HEAD, so no response has a body whatever its fields say. */
  constructor(private readonly events: ResponseEvents, private readonly bodiless = false) {}

  /** Every byte of the response is in. */
  get done(): boolean {
    return this.#state.kind === 'done';
  }

  /** Bytes after the end of the response: the server sent more than one answer, which we never ask for. */
  push(data: Buffer): void {
    let offset = 0;
    while (offset < data.length) {
      if (this.#state.kind === 'done') throw new Http1ParseError('the upstream sent bytes after the end of its response');
      offset = this.#step(data, offset);
    }
  }

  /** The connection closed: ends a body framed by the close, throws when the response is cut short. */
  finish(): void {
    const state = this.#state;
    if (state.kind === 'done') return;
    if (state.kind === 'close') {
      this.#end();
      return;
    }
    if (state.kind === 'head') throw new Http1ParseError('the upstream closed the connection before its response head');
    throw new Http1ParseError('the upstream closed the connection before the end of its response body');
  }

  #step(data: Buffer, offset: number): number {
    const state = this.#state;
    switch (state.kind) {
      case 'head':
        return this.#readHead(data, offset);
      case 'length': {
        const take = Math.min(state.remaining, data.length - offset);
        state.remaining -= take;
        this.events.onBody(data.subarray(offset, offset + take));
        if (state.remaining === 0) this.#end();
        return offset + take;
      }
      case 'close':
        this.events.onBody(offset === 0 ? data : data.subarray(offset));
        return data.length;
      case 'chunk-size':
        return this.#readChunkSize(state, data, offset);
      case 'chunk-data': {
        const take = Math.min(state.remaining, data.length - offset);
        state.remaining -= take;
        this.events.onBody(data.subarray(offset, offset + take));
        if (state.remaining === 0) this.#state = { kind: 'chunk-end', seen: 0 };
        return offset + take;
      }
      case 'chunk-end': {
        const expected = state.seen === 0 ? 0x0d : 0x0a;
        if (data[offset] !== expected) throw new Http1ParseError('the upstream sent a chunk without its closing CRLF');
        if (++state.seen === 2) this.#state = { kind: 'chunk-size', line: '' };
        return offset + 1;
      }
      case 'trailers':
        return this.#readTrailers(state, data, offset);
      default:
        return data.length;
    }
  }

  #readHead(data: Buffer, offset: number): number {
    const before = this.#head?.length ?? 0;
    const joined = before === 0 ? data.subarray(offset) : Buffer.concat([this.#head!, data.subarray(offset)]);
    // The terminator may straddle two reads: search from just before where the new bytes start.
    const end = joined.indexOf(CRLF_CRLF, Math.max(0, before - 3));
    if (end < 0) {
      if (joined.length > MAX_HEAD_BYTES) throw new Http1ParseError(`the upstream's response head is over ${MAX_HEAD_BYTES} bytes`);
      this.#head = Buffer.from(joined);
      return data.length;
    }
    if (end > MAX_HEAD_BYTES) throw new Http1ParseError(`the upstream's response head is over ${MAX_HEAD_BYTES} bytes`);
    this.#head = undefined;
    const head = parseHead(joined.toString('latin1', 0, end));
    const consumed = offset + (end + 4 - before);
    // Interim answers (100 Continue, 103 Early Hints) precede the real one.
    if (head.statusCode < 200) return consumed;
    this.#state = this.#bodyState(head);
    this.events.onHead(head);
    if (this.#state.kind === 'done') this.events.onEnd();
    return consumed;
  }

  #bodyState(head: ResponseHead): BodyState {
    const { statusCode, headers } = head;
    if (this.bodiless || statusCode === 204 || statusCode === 304) return { kind: 'done' };
    const coding = headers['transfer-encoding'];
    if (coding !== undefined) {
      const codings = [coding].flat().join(',').split(',').map((value) => value.trim().toLowerCase()).filter(Boolean);
      if (codings.length !== 1 || codings[0] !== 'chunked') {
        throw new Http1ParseError(`the upstream sent a body in a transfer coding other than chunked (${codings.join(', ').slice(0, 60)})`);
      }
      return { kind: 'chunk-size', line: '' };
    }
    const lengths = headers['content-length'];
    if (lengths !== undefined) {
      const values = new Set([lengths].flat().join(',').split(',').map((value) => value.trim()));
      const [only] = values;
      if (values.size !== 1 || !/^[0-9]{1,15}$/.test(only!)) throw new Http1ParseError('the upstream sent an invalid Content-Length');
      const remaining = Number(only);
      return remaining === 0 ? { kind: 'done' } : { kind: 'length', remaining };
    }
    head.keepAlive = false;
    return { kind: 'close' };
  }

  #readChunkSize(state: { kind: 'chunk-size'; line: string }, data: Buffer, offset: number): number {
    const newline = data.indexOf(0x0a, offset);
    const stop = newline < 0 ? data.length : newline;
    state.line += data.toString('latin1', offset, stop);
    if (state.line.length > MAX_CHUNK_LINE_BYTES) throw new Http1ParseError('the upstream sent an over-long chunk size line');
    if (newline < 0) return data.length;
    const match = /^([0-9a-fA-F]{1,12})[ \t]*(?:;[^\r]*)?\r$/.exec(state.line);
    if (!match) throw new Http1ParseError('the upstream sent an invalid chunk size');
    const size = Number.parseInt(match[1]!, 16);
    this.#state = size === 0 ? { kind: 'trailers', line: '', total: 0 } : { kind: 'chunk-data', remaining: size };
    return newline + 1;
  }

  #readTrailers(state: { kind: 'trailers'; line: string; total: number }, data: Buffer, offset: number): number {
    const newline = data.indexOf(0x0a, offset);
    const stop = newline < 0 ? data.length : newline;
    state.line += data.toString('latin1', offset, stop);
    state.total += stop - offset;
    if (state.total > MAX_TRAILER_BYTES) throw new Http1ParseError('the upstream sent over-long trailers');
    if (newline < 0) return data.length;
    if (!state.line.endsWith('\r')) throw new Http1ParseError('the upstream sent a trailer line without CRLF');
    const ended = state.line === '\r';
    state.line = '';
    if (ended) this.#end();
    return newline + 1;
  }

  #end(): void {
    this.#state = { kind: 'done' };
    this.events.onEnd();
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (!status) throw new Http1ParseError('the upstream sent an invalid HTTP/1.1 status line');
  const headers: Record<string, string | string[]> = {};
  for (let index = 1; index < lines.length; index++) {
    const line = lines[index]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    if (!FIELD_NAME.test(name)) throw new Http1ParseError('the upstream sent an invalid header field line');
    if (line.includes('\n')) throw new Http1ParseError('the upstream sent a bare LF in its header');
    const key = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    const previous = headers[key];
    headers[key] = previous === undefined ? value : [previous, value].flat();
  }
  const connection = [headers.connection ?? []].flat().join(',').toLowerCase();
  const keepAlive = status[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { statusCode: Number(status[2]), headers, keepAlive };
}
