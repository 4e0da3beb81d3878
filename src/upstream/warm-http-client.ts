/**
 * undici compiles its HTTP/1.1 parser (llhttp, WebAssembly) when it opens its first connection,
 * synchronously: 24-28 ms on these machines (node -e of one request, first vs second). Left to
 * the first miss after a start, that is time to first byte the client waits for; `serve` pays it
 * once instead, in the background right after it listens (issue 16 item 2: a miss's first byte no
 * later than the upstream's own plus a round trip). A serving process compiles WebAssembly with
 * V8's baseline compiler only (cli/serving-v8-flags.ts): optimising this module cost each worker
 * about 37 MB for a moment.
 *
 * The request goes to a throwaway server on 127.0.0.1 that this function starts and stops: no
 * upstream, no configuration, no TLS is involved. It never throws: a failure only means the
 * first miss compiles the parser, as before.
 */
import { createServer, type AddressInfo } from 'node:net';
import { request } from 'undici';

const ANSWER = 'HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n';

export async function warmHttpClient(): Promise<boolean> {
  const server = createServer((socket) => {
    socket.once('data', () => socket.end(ANSWER));
    socket.on('error', () => {});
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
    });
    const { port } = server.address() as AddressInfo;
    const response = await request(`http://127.0.0.1:${port}/`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
    await response.body.dump();
    return response.statusCode === 204;
  } catch {
    return false;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}
