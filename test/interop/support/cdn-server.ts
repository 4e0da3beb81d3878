/**
 * The hub's blob "CDN": a static file server over the hub registry's storage directory. The
 * registry's `redirect` storage middleware answers blob GETs with 307 to
 * `<cdn>/docker/registry/v2/blobs/sha256/<xx>/<hex>/data`, which is exactly the file's path
 * under the storage root. Only GET and HEAD of blob data files are served; every request is counted.
 */
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { RequestLog, authorizationKind, listenOnLoopback, closeServer } from './request-log.js';

const BLOB_DATA_PATH = /^\/docker\/registry\/v2\/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}\/data$/;

export interface CdnServer {
  readonly url: string;
  readonly requests: RequestLog;
  close(): Promise<void>;
}

export async function startCdnServer(storageRoot: string): Promise<CdnServer> {
  const requests = new RequestLog('cdn');
  const server = createServer(function cdnFile(req, res) {
    const rawUrl = req.url ?? '/';
    const path = rawUrl.split('?')[0] ?? rawUrl;
    const entry = { method: req.method ?? '', path, url: rawUrl, status: 404, authorization: authorizationKind(req.headers.authorization) };
    requests.record(entry);
    const size = req.method === 'GET' || req.method === 'HEAD' ? blobFileSize(storageRoot, path) : undefined;
    if (size === undefined) {
      entry.status = req.method === 'GET' || req.method === 'HEAD' ? 404 : 405;
      res.writeHead(entry.status).end();
      return;
    }
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(join(storageRoot, path)).pipe(res);
  });
  const port = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}

function blobFileSize(storageRoot: string, path: string): number | undefined {
  if (!BLOB_DATA_PATH.test(path)) return undefined;
  try {
    return statSync(join(storageRoot, path)).size;
  } catch {
    return undefined;
  }
}
