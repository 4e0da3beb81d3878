/**
 * HTTPS for the mirror (`tls.cert`, `tls.key`): dockerd talks to a mirror over TLS without an
 * `insecure-registries` entry, and Basic credentials never cross the network in the clear.
 * The files are read and checked at start-up, so a wrong path or a key that does not match the
 * certificate stops the process with a message naming the key, not at the first handshake.
 */
import { createServer, type ServerOptions } from 'node:https';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigError } from '../config/mirror-config.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

/** Options for @hono/node-server's `serve`: empty for plain HTTP. */
export type ServeTlsOptions = Record<string, never> | { createServer: typeof createServer; serverOptions: ServerOptions };

export async function tlsServeOptions(tls: TlsFiles | undefined): Promise<ServeTlsOptions> {
  if (!tls) return {};
  const [cert, key] = await Promise.all([readPem('tls.cert', tls.cert), readPem('tls.key', tls.key)]);
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    throw new ConfigError(`tls: the certificate ${tls.cert} and key ${tls.key} cannot be used together: ${(error as Error).message}`);
  }
  return { createServer, serverOptions: { cert, key } };
}

async function readPem(name: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new ConfigError(`${name}: cannot read ${file}: ${(error as Error).message}`);
  }
}
