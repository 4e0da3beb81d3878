/**
 * The blob client (src/upstream/blob-socket-client.ts) against real servers on loopback: its
 * chunks are slices of one reused read buffer, over plain TCP and TLS; connections are kept
 * alive and a stale one is replaced once; a body cut short, stalled or aborted fails; a header
 * value that would add lines is never sent.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError, UpstreamUnavailableError } from '../../src/domain/errors.js';
import { BlobSocketClient, blobSocketReads, isDirectBody, type SocketResponse } from '../../src/upstream/blob-socket-client.js';
import { dialPolicyFor, guardedConnector } from '../../src/upstream/dial-guard.js';
import type { HopRequest } from '../../src/upstream/http-dispatcher.js';
import { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { selfSignedCertificate, tempDir, type TempDir } from '../security/security-fixture.js';
import { closeAllServers, send, startServer } from './fake-servers.js';

const TIMEOUTS = { connectMs: 2000, headersMs: 2000, idleMs: 2000 };
const cleanups: (() => Promise<unknown> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await closeAllServers();
});

function clientFor(origin: string, socketOptions: object = {}, timeouts = TIMEOUTS): BlobSocketClient {
  const url = new URL(origin);
  const connector = guardedConnector(dialPolicyFor('test', url, []), timeouts.connectMs, { ...blobSocketReads(), ...socketOptions });
  const client = new BlobSocketClient(connector, timeouts);
  cleanups.push(() => client.close());
  return client;
}

function get(origin: string, path = '/blob', headers: Record<string, string> = {}, signal?: AbortSignal): HopRequest {
  return { method: 'GET', url: new URL(path, origin), headers, signal };
}

interface Delivered {
  bytes: Buffer;
  chunks: number;
  /**
   * The memory the chunks viewed, but the first (a chunk is valid only during the sink's call, so
   * its bytes are copied there). The first holds what came in the head's read, kept as a copy
   * until the sink was there.
   */
  memory: Set<ArrayBufferLike>;
}

async function delivered(response: SocketResponse): Promise<Delivered> {
  const copies: Buffer[] = [];
  const memory = new Set<ArrayBufferLike>();
  await response.body.deliverTo((chunk) => {
    if (copies.length > 0) memory.add(chunk.buffer);
    copies.push(Buffer.from(chunk));
    return undefined;
  });
  return { bytes: Buffer.concat(copies), chunks: copies.length, memory };
}

const randomBody = (size: number): Buffer => randomBytes(size);

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A raw TCP server that answers each request with `answer(index)` written as given. */
async function rawServer(answer: (socket: Socket, requestIndex: number, connectionIndex: number) => void): Promise<{ origin: string; connections: number; requests: string[] }> {
  const state = { origin: '', connections: 0, requests: [] as string[] };
  const server: TcpServer = createTcpServer((socket) => {
    const connection = state.connections++;
    let pending = '';
    socket.on('error', () => {});
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        const end = pending.indexOf('\r\n\r\n') + 4;
        state.requests.push(pending.slice(0, end));
        pending = pending.slice(end);
        answer(socket, state.requests.length - 1, connection);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  cleanups.push(() => sockets.forEach((socket) => socket.destroy()));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

describe('blob socket client', () => {
  it('hands over slices of one reused read buffer: the body arrives byte-exact without a buffer per read', async () => {
    const body = randomBody(8 * 1024 * 1024 + 13);
    const server = await startServer((_req, res) => send(res, 200, { 'content-type': 'application/octet-stream' }, body));
    const client = clientFor(server.origin);
    const got = await delivered(await client.send(get(server.origin), 'GET /blob'));
    expect(sha256(got.bytes)).toBe(sha256(body));
    expect(got.chunks).toBeGreaterThan(1);
    // Every chunk views the same memory: nothing was allocated per read.
    expect(got.memory.size).toBe(1);
  });

  it('reads TLS the same way: one reused buffer, the bytes exact', async () => {
    const dir: TempDir = await tempDir('blob-socket-tls-');
    cleanups.push(() => dir.remove());
    const { certFile, keyFile, cert } = await selfSignedCertificate(dir);
    const body = randomBody(3 * 1024 * 1024 + 5);
    const server = createHttpsServer({ cert: await readFile(certFile), key: await readFile(keyFile) }, (_req, res) => send(res, 200, {}, body));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = clientFor(origin, { ca: cert });
    const got = await delivered(await client.send(get(origin), 'GET /blob'));
    expect(sha256(got.bytes)).toBe(sha256(body));
    expect(got.chunks).toBeGreaterThan(1);
    expect(got.memory.size).toBe(1);
  });

  it('keeps connections alive: a redirect and three blobs through the registry client take one connection per origin', async () => {
    const body = randomBody(300_000);
    const cdn = await rawServer((socket) => socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`), body])));
    const hub = await rawServer((socket, index) => socket.write(`HTTP/1.1 307 Temporary Redirect\r\nlocation: ${cdn.origin}/cdn/${index}\r\ncontent-length: 5\r\n\r\nmoved`));
    const upstream = new UpstreamRegistry({ name: 'hub', config: { url: hub.origin, tokenRealms: [], redirectHosts: [new URL(cdn.origin).host] }, timeouts: TIMEOUTS });
    cleanups.push(() => upstream.close());
    for (let round = 0; round < 3; round++) {
      const blob = await upstream.fetchBlob('library/alpine', `sha256:${'a'.repeat(64)}`);
      // The body the cache fill takes straight from the reused buffer (pull-through/body-pump.ts).
      expect(isDirectBody(blob.body)).toBe(true);
      const chunks: Buffer[] = [];
      for await (const chunk of blob.body) chunks.push(chunk as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(body));
      expect(blob.size).toBe(body.length);
    }
    expect({ hub: hub.connections, cdn: cdn.connections, hubRequests: hub.requests.length, cdnRequests: cdn.requests.length }).toEqual({ hub: 1, cdn: 1, hubRequests: 3, cdnRequests: 3 });
    expect(hub.requests[0]).toMatch(/^GET \/v2\/library\/alpine\/blobs\/sha256:a{64} HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nuser-agent: registry-mirror\/0\.1\r\n/);
  });

  it('replaces a kept-alive connection the server dropped, once, on a fresh connection', async () => {
    const server = await rawServer((socket, index) => {
      // The second request finds its connection closed without an answer, as after a server's idle timeout.
      if (index === 1) return void socket.destroy();
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`);
    });
    const client = clientFor(server.origin);
    for (let round = 0; round < 2; round++) {
      expect((await delivered(await client.send(get(server.origin), 'GET /blob'))).bytes.toString()).toBe('ok');
    }
    expect({ connections: server.connections, requests: server.requests.length }).toEqual({ connections: 2, requests: 3 });
  });

  it('a fresh connection that closes before answering is not retried: an outage', async () => {
    const server = await rawServer((socket) => socket.destroy());
    const client = clientFor(server.origin);
    await expect(client.send(get(server.origin), 'GET /blob')).rejects.toBeInstanceOf(UpstreamUnavailableError);
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    ['Content-Length', 'content-length: 1000\r\n\r\n' + 'x'.repeat(400)],
    ['chunked', 'transfer-encoding: chunked\r\n\r\n190\r\n' + 'x'.repeat(400) + '\r\n'],
  ])('a %s body cut short fails its delivery; nothing looks complete', async (_framing, rest) => {
    const server = await rawServer((socket) => socket.end(`HTTP/1.1 200 OK\r\n${rest}`));
    const client = clientFor(server.origin);
    const response = await client.send(get(server.origin), 'GET /blob');
    let received = 0;
    await expect(response.body.deliverTo((chunk) => void (received += chunk.length))).rejects.toThrow(/before the end/);
    expect(received).toBe(400);
  });

  it('a body that stalls for idleMs fails; a sink that holds it back longer than that does not', async () => {
    const stalling = await rawServer((socket) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345`));
    const client = clientFor(stalling.origin, {}, { ...TIMEOUTS, idleMs: 150 });
    const stalled = await client.send(get(stalling.origin), 'GET /blob');
    await expect(stalled.body.deliverTo(() => undefined)).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });

    const body = randomBody(2 * 1024 * 1024);
    const server = await startServer((_req, res) => send(res, 200, {}, body));
    const slowReader = clientFor(server.origin, {}, { ...TIMEOUTS, idleMs: 150 });
    const response = await slowReader.send(get(server.origin), 'GET /blob');
    const kept: Buffer[] = [];
    let waits = 0;
    await response.body.deliverTo((chunk) => {
      kept.push(Buffer.from(chunk));
      if (waits++ > 0) return undefined;
      return new Promise((resolve) => setTimeout(resolve, 400));
    });
    expect(sha256(Buffer.concat(kept))).toBe(sha256(body));
  });

  it('each connection reads into a buffer of its own: two bodies whose sink holds every chunk until its promise settles arrive exact', async () => {
    const bodies = [randomBody(3 * 1024 * 1024 + 7), randomBody(2 * 1024 * 1024 + 3)];
    const server = await startServer((req, res) => send(res, 200, {}, bodies[Number(req.url!.slice(-1))]!));
    const client = clientFor(server.origin);
    const responses = await Promise.all(bodies.map((_body, index) => client.send(get(server.origin, `/blob${index}`), 'GET /blob')));
    const digests = await Promise.all(responses.map(async (response) => {
      const hash = createHash('sha256');
      const memory = new Set<ArrayBufferLike>();
      // The chunk is used after the call, before the promise settles: what a writer on the thread pool does.
      await response.body.deliverTo((chunk) => {
        memory.add(chunk.buffer);
        return new Promise((resolve) => setImmediate(() => {
          hash.update(chunk);
          resolve();
        }));
      });
      return { digest: hash.digest('hex'), memory };
    }));
    expect(digests.map((entry) => entry.digest)).toEqual(bodies.map(sha256));
    // Two connections, two buffers (the first chunk of each may be the one held before the sink came).
    const [first, second] = digests.map((entry) => entry.memory);
    expect([...first!].some((memory) => second!.has(memory))).toBe(false);
  });

  it('a sink that waits on every chunk gets every byte, in order', async () => {
    const body = randomBody(4 * 1024 * 1024 + 1);
    const server = await startServer((_req, res) => send(res, 200, {}, body));
    const client = clientFor(server.origin);
    const response = await client.send(get(server.origin), 'GET /blob');
    const kept: Buffer[] = [];
    await response.body.deliverTo((chunk) => {
      kept.push(Buffer.from(chunk));
      return new Promise((resolve) => setImmediate(resolve));
    });
    expect(sha256(Buffer.concat(kept))).toBe(sha256(body));
  });

  it('an abort during the body fails the delivery and closes the connection', async () => {
    const server = await rawServer((socket) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n12345`));
    const client = clientFor(server.origin);
    const abort = new AbortController();
    const response = await client.send(get(server.origin, '/blob', {}, abort.signal), 'GET /blob');
    const delivery = response.body.deliverTo(() => undefined);
    abort.abort(new Error('client gone'));
    await expect(delivery).rejects.toThrow('client gone');
  });

  it('never sends a header value with CR or LF (a token is the upstream\'s text)', async () => {
    const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
    const client = clientFor(server.origin);
    await expect(client.send(get(server.origin, '/blob', { authorization: 'Bearer x\r\nx-injected: 1' }), 'GET /blob')).rejects.toBeInstanceOf(UpstreamBadResponseError);
    expect(server.connections).toBe(0);
  });

  it('a malformed answer is the upstream\'s fault (502), and its connection is not reused', async () => {
    const server = await rawServer((socket, index) => socket.write(index === 0 ? 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n' : 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\ny'));
    const client = clientFor(server.origin);
    const first = await client.send(get(server.origin), 'GET /blob');
    await first.body.deliverTo(() => undefined).catch(() => undefined);
    const second = await client.send(get(server.origin), 'GET /blob');
    expect((await delivered(second)).bytes.toString()).toBe('y');
    expect(server.connections).toBe(2);
    const broken = await rawServer((socket) => socket.write('HTTP/1.1 2000 Nope\r\n\r\n'));
    await expect(clientFor(broken.origin).send(get(broken.origin), 'GET /blob')).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });
});
