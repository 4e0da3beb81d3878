/**
 * http/http-server.ts on its own: how a parser error Node reports with 'clientError' is answered
 * on the socket. The end-to-end cases (garbage, oversized headers, no Host, CONNECT) are in
 * test/e2e/bad-input.test.ts; the request timeout is driven here, since Node checks it only every
 * `connectionsCheckingInterval` (30 s).
 */
import type { Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMirrorHttpServer } from '../../src/http/http-server.js';

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A connection to a fresh server, with the server's end of it. */
async function connection(): Promise<{ client: Socket; serverSide: Socket; received: Promise<string> }> {
  server = createMirrorHttpServer(() => new Response('{}'), { defaultHost: '127.0.0.1' }) as Server;
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const serverSide = new Promise<Socket>((resolve) => server!.once('connection', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  let text = '';
  client.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const received = new Promise<string>((resolve) => client.on('close', () => resolve(text)));
  return { client, serverSide: await serverSide, received };
}

function clientError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

describe('parser errors', () => {
  it('a request that did not arrive in time answers 408 with an OCI body and closes', async () => {
    const { serverSide, received } = await connection();
    server!.emit('clientError', clientError('ERR_HTTP_REQUEST_TIMEOUT'), serverSide);
    const text = await received;
    expect(text.startsWith('HTTP/1.1 408 Request Timeout\r\n')).toBe(true);
    expect(text).toContain('Connection: close\r\n');
    expect(text).toContain('Docker-Distribution-API-Version: registry/2.0\r\n');
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect(JSON.parse(body)).toEqual({ errors: [{ code: 'BAD_REQUEST', message: 'the request did not arrive in time' }] });
    expect(text).toContain(`Content-Length: ${Buffer.byteLength(body)}\r\n`);
  });

  it('a connection the client reset gets no answer, only closed', async () => {
    const { serverSide, received } = await connection();
    server!.emit('clientError', clientError('ECONNRESET'), serverSide);
    expect(await received).toBe('');
  });
});
