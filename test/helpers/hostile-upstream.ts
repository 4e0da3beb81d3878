/**
 * A hostile or broken upstream on a real socket (127.0.0.1, port from the OS): each test says
 * how it answers, request by request. It records requests and counts TCP connections, so a test
 * can also use one as a "sink" and prove that the mirror never dialled it.
 *
 *   const upstream = await startHostile((req, res) => answer(res, 200, { 'content-type': 'text/html' }, '<html>'));
 *   ...
 *   expect(upstream.connections).toBe(0);
 */
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type HostileHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface HostileServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** 127.0.0.1:<port> */
  host: string;
  /** Method and path (with query) of every request, in order. */
  readonly requests: string[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Replaces how requests are answered from now on. */
  handle(handler: HostileHandler): void;
  close(): Promise<void>;
}

export async function startHostile(handler: HostileHandler = (_req, res) => answer(res, 404)): Promise<HostileServer> {
  let current = handler;
  let connections = 0;
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    current(req, res);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    handle: (next) => void (current = next),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A complete answer with a true Content-Length (HEAD: head only). */
export function answer(res: ServerResponse, status: number, headers: OutgoingHttpHeaders = {}, body: string | Buffer = ''): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': bytes.length, ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}
