/**
 * Servers that behave like a broken S3, on 127.0.0.1 with ports from the OS: one that accepts
 * connections and never answers (a hung gateway), one that starts a body and stalls, and a TLS
 * front for a real S3 (an https endpoint with a certificate of our own), plus a port nothing
 * listens on. Each counts what it accepted, so tests can see a request really was made.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';

export interface FaultServer {
  readonly endpoint: string;
  /** Connections (or requests) accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function closer(server: Server | HttpServer, sockets: Set<Socket>): () => Promise<void> {
  return () => {
    for (const socket of sockets) socket.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
}

/** Accepts TCP connections and never sends a byte. */
export async function startBlackHole(): Promise<FaultServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.resume();
  });
  const port = await listen(server);
  return { endpoint: `http://127.0.0.1:${port}`, get accepted() { return sockets.size; }, close: closer(server, sockets) };
}

/** Answers every request 200 with `length` announced, sends `sent` bytes, then goes silent. */
export async function startStallingBody(length: number, sent: number): Promise<FaultServer> {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createHttpServer((request, response) => {
    requests++;
    request.resume();
    response.writeHead(200, { 'content-length': String(length), etag: '"stall"', 'last-modified': new Date().toUTCString() });
    response.write(Buffer.alloc(sent, 7));
  });
  server.on('connection', (socket) => sockets.add(socket));
  const port = await listen(server);
  return { endpoint: `http://127.0.0.1:${port}`, get accepted() { return requests; }, close: closer(server, sockets) };
}

/** An address where nothing listens (a port the OS gave us, closed again). */
export async function refusedEndpoint(): Promise<string> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

export interface TlsFront extends FaultServer {
  /** PEM file of the self-signed certificate the front presents (its own CA). */
  readonly caFile: string;
}

/** https://127.0.0.1:<port> in front of `backend` (http), with a fresh self-signed certificate. */
export async function startTlsFront(backend: string): Promise<TlsFront> {
  const dir = mkdtempSync(join(tmpdir(), 'tls-front-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=registry-mirror-s3-test',
    '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'pipe', timeout: 20_000 });
  const target = new URL(backend);
  const sockets = new Set<Socket>();
  const server = createTlsServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (socket) => {
    const upstream = createConnection(Number(target.port), target.hostname);
    for (const end of [socket, upstream]) {
      sockets.add(end);
      end.on('error', () => {
        socket.destroy();
        upstream.destroy();
      });
    }
    socket.pipe(upstream).pipe(socket);
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  const close = closer(server, sockets);
  return {
    endpoint: `https://127.0.0.1:${port}`,
    caFile: certFile,
    get accepted() { return sockets.size / 2; },
    close: async () => {
      await close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
