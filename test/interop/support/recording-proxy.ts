/**
 * A reverse proxy that records, for every request a push client sends, what matters for
 * implementing the push API: method, target, the upload headers (Content-Type, Content-Length,
 * Content-Range, Transfer-Encoding), how many body bytes actually came, and the registry's
 * answer (status, Location, Range, OCI-Subject). Like counting-proxy.ts it forwards the Host
 * header unchanged, so the upload Locations a registry builds point back at this proxy.
 */
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback } from './request-log.js';

export interface RecordedRequest {
  method: string;
  /** Raw request target, query string included. */
  url: string;
  userAgent: string;
  authorization: 'none' | 'basic' | 'bearer' | 'other';
  contentType?: string;
  contentLength?: number;
  contentRange?: string;
  transferEncoding?: string;
  /** Body bytes received (whatever the headers said). */
  bodyBytes: number;
  status: number;
  location?: string;
  range?: string;
  ociSubject?: string;
}

export class RecordingProxy {
  readonly requests: RecordedRequest[] = [];
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #server: Server;
  #port = 0;

  private constructor(private readonly target: string) {
    this.#server = createServer((req, res) => this.#forward(req, res));
  }

  static async start(target: string): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(target);
    proxy.#port = await listenOnLoopback(proxy.#server);
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  mark(): number {
    return this.requests.length;
  }

  since(mark: number): RecordedRequest[] {
    return this.requests.slice(mark);
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
    this.#agent.destroy();
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    const entry = describeRequest(req);
    this.requests.push(entry);
    req.on('data', (chunk: Buffer) => {
      entry.bodyBytes += chunk.length;
    });
    const target = new URL(this.target);
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: this.#agent }, (answer) => {
      entry.status = answer.statusCode ?? 0;
      const header = (name: string) => (answer.headers[name] as string | undefined) ?? undefined;
      Object.assign(entry, withoutUndefined({ location: header('location'), range: header('range'), ociSubject: header('oci-subject') }));
      res.writeHead(entry.status, answer.rawHeaders);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`recording proxy: ${error.message}`);
    });
    req.pipe(upstream);
  }
}

function describeRequest(req: IncomingMessage): RecordedRequest {
  const header = (name: string) => req.headers[name] as string | undefined;
  const length = header('content-length');
  const authorization = header('authorization');
  return {
    method: req.method ?? '',
    url: req.url ?? '/',
    userAgent: header('user-agent') ?? '',
    authorization: !authorization ? 'none' : /^basic /i.test(authorization) ? 'basic' : /^bearer /i.test(authorization) ? 'bearer' : 'other',
    ...withoutUndefined({
      contentType: header('content-type'),
      contentLength: length === undefined ? undefined : Number(length),
      contentRange: header('content-range'),
      transferEncoding: header('transfer-encoding'),
    }),
    bodyBytes: 0,
    status: 0,
  };
}

function withoutUndefined<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}
