/**
 * A TCP forwarder that counts the bytes flowing through it, placed in front of an upstream
 * (the hub registry's proxy, its CDN) so the benchmark can report what a mirror really
 * downloaded: a request count says nothing about a fetch that was cut off half-way.
 * It forwards raw bytes, so Host headers, keep-alive and redirects are untouched.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class ByteTap {
  /** Bytes sent from the upstream back to its clients (responses: headers and bodies). */
  bytesDown = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #port = 0;

  private constructor(readonly targetPort: number) {
    this.#server = createServer((client) => this.#forward(client));
  }

  static async start(targetPort: number): Promise<ByteTap> {
    const tap = new ByteTap(targetPort);
    await new Promise<void>((resolve, reject) => {
      tap.#server.once('error', reject);
      tap.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = tap.#server.address();
    tap.#port = typeof address === 'object' && address ? address.port : 0;
    return tap;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(client: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    }
    upstream.on('data', (chunk: Buffer) => {
      this.bytesDown += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    // Either side failing ends the pair, like a proxy dropping the connection.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }
}
