/**
 * The ceiling of any server built on Node's HTTP module, for the throughput scenario: Node's
 * `http` server with the mirror's own sendfile path (src/http/send-file.ts, the code a warm blob
 * GET ends in, with the addon `npm ci` built) and nothing else: no routing, authentication,
 * registry lookup, logging or metrics. It serves the seeded blob files
 * (`<seedDir>/blobs/sha256/<hex>`) at `/v2/<name>/blobs/sha256:<hex>`, as the nginx ceiling
 * does, with as many processes as nginx has workers (`serve` runs one per core too). What the
 * mirror loses against this server is its own per-request work; what this server loses against
 * nginx is Node's.
 *
 *   node --import tsx test/bench/node-sendfile-server.ts <port> <seedDir> <processes>
 */
import cluster from 'node:cluster';
import { statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { sendFileRange } from '../../src/http/send-file.js';
import { sendfileAddonStatus } from '../../src/http/sendfile-addon.js';

const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:([a-f0-9]{64})$/;

const [portArgument, seedDir, processesArgument] = process.argv.slice(2);
if (!portArgument || !seedDir || !processesArgument) throw new Error('usage: node-sendfile-server.ts <port> <seedDir> <processes>');

if (cluster.isPrimary) {
  if (!sendfileAddonStatus.available) throw new Error(`the sendfile addon is not available: ${sendfileAddonStatus.reason}`);
  for (let index = 0; index < Number(processesArgument); index++) cluster.fork();
  cluster.on('exit', () => process.exit(1));
} else {
  createServer(answer).listen(Number(portArgument), '127.0.0.1');
}

function answer(request: IncomingMessage, response: ServerResponse): void {
  if (request.url === '/v2/') return void response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  const hex = BLOB_PATH.exec(request.url ?? '')?.[1];
  const path = hex && join(seedDir!, 'blobs', 'sha256', hex);
  const size = path ? sizeOf(path) : undefined;
  if (!path || size === undefined) return void response.writeHead(404).end();
  response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'docker-content-digest': `sha256:${hex}` });
  if (request.method === 'HEAD') return void response.end();
  sendFileRange(response, { path, start: 0, end: size - 1, sendfile: true, done: () => {} });
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}
