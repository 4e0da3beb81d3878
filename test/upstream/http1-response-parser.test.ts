/**
 * The blob client's HTTP/1.1 response parser (src/upstream/http1-response-parser.ts): whatever
 * way the socket splits a response, the body comes out byte for byte and ends once; a response
 * cut short or malformed is an error, never a short body that looks complete.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Http1ParseError, Http1ResponseParser, MAX_HEAD_BYTES, type ResponseHead } from '../../src/upstream/http1-response-parser.js';

interface Parsed {
  heads: ResponseHead[];
  body: Buffer;
  ends: number;
}

function parserFor(bodiless = false): { parser: Http1ResponseParser; parsed: Parsed } {
  const chunks: Buffer[] = [];
  const parsed: Parsed = { heads: [], body: Buffer.alloc(0), ends: 0 };
  const parser = new Http1ResponseParser({
    onHead: (head) => parsed.heads.push(head),
    // A slice of the read: copied here because the test reuses nothing, but keeps it past the call.
    onBody: (chunk) => {
      chunks.push(Buffer.from(chunk));
      parsed.body = Buffer.concat(chunks);
    },
    onEnd: () => parsed.ends++,
  }, bodiless);
  return { parser, parsed };
}

/** Feeds `wire` in pieces cut at `cuts` (positions, any order). */
function feed(parser: Http1ResponseParser, wire: Buffer, cuts: number[]): void {
  const points = [...new Set(cuts.map((cut) => cut % (wire.length + 1)))].sort((a, b) => a - b);
  let start = 0;
  for (const point of [...points, wire.length]) {
    if (point > start) parser.push(wire.subarray(start, point));
    start = Math.max(start, point);
  }
}

function chunked(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (const size of sizes) {
    if (offset >= body.length) break;
    const piece = body.subarray(offset, offset + Math.max(1, size));
    parts.push(Buffer.from(`${piece.length.toString(16)}${size % 3 === 0 ? ';ext=1' : ''}\r\n`), piece, Buffer.from('\r\n'));
    offset += piece.length;
  }
  if (offset < body.length) parts.push(Buffer.from(`${(body.length - offset).toString(16)}\r\n`), body.subarray(offset), Buffer.from('\r\n'));
  parts.push(Buffer.from('0\r\nx-trailer: 1\r\n\r\n'));
  return Buffer.concat(parts);
}

const head = (fields: string) => Buffer.from(`HTTP/1.1 200 OK\r\n${fields}\r\n`);

describe('HTTP/1.1 response parser', () => {
  it('hands over every body byte exactly once and ends once, however the reads split a Content-Length, chunked or close-framed response', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.constantFrom('length', 'chunked', 'close'),
        fc.array(fc.nat({ max: 5000 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 8 }),
        (bytes, framing, cuts, sizes) => {
          const body = Buffer.from(bytes);
          const wire =
            framing === 'length' ? Buffer.concat([head(`content-length: ${body.length}\r\n`), body])
            : framing === 'chunked' ? Buffer.concat([head('transfer-encoding: chunked\r\n'), chunked(body, sizes)])
            : Buffer.concat([head('connection: close\r\n'), body]);
          const { parser, parsed } = parserFor();
          feed(parser, wire, cuts);
          if (framing === 'close') parser.finish();
          expect(parsed.body.equals(body)).toBe(true);
          expect(parsed.ends).toBe(1);
          expect(parsed.heads).toHaveLength(1);
          expect(parser.done).toBe(true);
          expect(parsed.heads[0]!.keepAlive).toBe(framing !== 'close');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a response cut anywhere before its end is an error when the connection closes, never a complete body', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 2000 }), fc.boolean(), fc.nat(), (bytes, useChunked, cutAt) => {
        const body = Buffer.from(bytes);
        const wire = useChunked ? Buffer.concat([head('transfer-encoding: chunked\r\n'), chunked(body, [97])]) : Buffer.concat([head(`content-length: ${body.length}\r\n`), body]);
        const cut = cutAt % wire.length;
        const { parser, parsed } = parserFor();
        parser.push(wire.subarray(0, cut));
        expect(() => parser.finish()).toThrow(Http1ParseError);
        expect(parsed.ends).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('reads the status, lower-cased fields (repeats as arrays) and keep-alive; skips interim 1xx answers', () => {
    const { parser, parsed } = parserFor();
    parser.push(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nSet-Cookie: a\r\nset-cookie: b\r\nContent-Length: 0\r\n\r\n'));
    expect(parsed.heads).toEqual([{ statusCode: 307, headers: { location: '/x', 'set-cookie': ['a', 'b'], 'content-length': '0' }, keepAlive: true }]);
    expect(parsed.ends).toBe(1);
    const closing = parserFor();
    closing.parser.push(Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx'));
    expect(closing.parsed.heads[0]!.keepAlive).toBe(false);
    const old = parserFor();
    old.parser.push(Buffer.from('HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx'));
    expect(old.parsed.heads[0]!.keepAlive).toBe(false);
  });

  it('a HEAD answer, a 204 and a 304 have no body whatever their Content-Length says', () => {
    const headAnswer = parserFor(true);
    headAnswer.parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'));
    expect(headAnswer.parsed.ends).toBe(1);
    const noContent = parserFor();
    noContent.parser.push(Buffer.from('HTTP/1.1 204 No Content\r\nContent-Length: 100\r\n\r\n'));
    expect(noContent.parsed.ends).toBe(1);
  });

  it.each([
    ['an invalid status line', 'HTTP/2 200 OK\r\n\r\n'],
    ['a status out of range', 'HTTP/1.1 099 Low\r\n\r\n'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n'],
    ['a field name with a space', 'HTTP/1.1 200 OK\r\nContent Length: 1\r\n\r\n'],
    ['differing Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx'],
    ['a Content-Length that is not a number', 'HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n'],
    ['a transfer coding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
    ['an invalid chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['a chunk without its CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy'],
  ])('refuses %s', (_what, wire) => {
    const { parser, parsed } = parserFor();
    expect(() => parser.push(Buffer.from(wire))).toThrow(Http1ParseError);
    expect(parsed.ends).toBe(0);
  });

  it('refuses bytes after the end of the response (a connection that says more is not reused)', () => {
    const { parser } = parserFor();
    expect(() => parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n'))).toThrow(/after the end of its response/);
  });

  it('refuses a head over the limit, also when it never ends', () => {
    const { parser } = parserFor();
    const filler = `X-Fill: ${'a'.repeat(1000)}\r\n`;
    expect(() => {
      for (let index = 0; index < MAX_HEAD_BYTES / 1000 + 2; index++) parser.push(Buffer.from(index === 0 ? `HTTP/1.1 200 OK\r\n${filler}` : filler));
    }).toThrow(/response head is over/);
  });

  it('Transfer-Encoding chunked wins over a Content-Length (RFC 9112 section 6.3)', () => {
    const { parser, parsed } = parserFor();
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'));
    expect(parsed.body.toString()).toBe('abc');
    expect(parsed.ends).toBe(1);
  });
});
