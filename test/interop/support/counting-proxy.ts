/**
 * A reverse proxy that records every request before passing it to a registry process, so tests
 * can count what reached an upstream. It forwards the Host header unchanged: the registry builds
 * upload Locations from it, and those must point back at the proxy.
 */
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { RequestLog, authorizationKind, listenOnLoopback, closeServer } from './request-log.js';

export class CountingProxy {
  readonly requests: RequestLog;
  /** Where requests go; set once the registry behind it has a port (the proxy listens first). */
  target = '';
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #server: Server;
  #port = 0;

  private constructor(name: string) {
    this.requests = new RequestLog(name);
    this.#server = createServer((req, res) => this.#forward(req, res));
  }

  static async start(name: string): Promise<CountingProxy> {
    const proxy = new CountingProxy(name);
    proxy.#port = await listenOnLoopback(proxy.#server);
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
    this.#agent.destroy();
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const rawUrl = req.url ?? '/';
    const entry = { method: req.method ?? '', path: rawUrl.split('?')[0] ?? rawUrl, url: rawUrl, status: 0, authorization: authorizationKind(req.headers.authorization) };
    this.requests.record(entry);
    const target = new URL(this.target);
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: rawUrl, headers: req.headers, agent: this.#agent }, (upstreamRes) => {
      entry.status = upstreamRes.statusCode ?? 0;
      res.writeHead(entry.status, upstreamRes.rawHeaders);
      upstreamRes.pipe(res);
    });
    upstream.on('error', (error) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`counting proxy ${this.requests.name}: ${error.message}`);
    });
    req.pipe(upstream);
  }
}
