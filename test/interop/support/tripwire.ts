/**
 * A loopback port that must never be dialled: it accepts each connection, counts it and closes it
 * at once, so a client that reaches it fails just as on a dead port, and the test can say so.
 * Used as the "real registry" behind every client config (hosts.toml `server`, registries.conf
 * `location`), as every client's HTTP(S) proxy, and as the host named in hostile `ns` values.
 */
import { createServer, type Server } from 'node:net';

export class Tripwire {
  #connections = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => {
      this.#connections += 1;
      socket.on('error', () => undefined);
      socket.destroy();
    });
  }

  static async start(): Promise<Tripwire> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
    if (port >= 5100 && port <= 5199) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return Tripwire.start();
    }
    return new Tripwire(server, port);
  }

  /** host:port, the form registries.conf and `ns` use. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Connections accepted since start. */
  get connections(): number {
    return this.#connections;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Environment that keeps a Go or Node client on this machine: every proxied request goes to the
 * tripwire; only loopback is reached directly.
 */
export function offlineEnv(tripwire: Tripwire, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const proxy = tripwire.url;
  return {
    PATH: process.env.PATH,
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    ...extra,
  };
}
