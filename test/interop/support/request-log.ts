/**
 * What a stand-in server received. Tests take a `mark()` before an action and read
 * `since(mark)` after it, so assertions name exact requests ("GET /v2/library/alpine/manifests/3.20").
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

export interface LoggedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Raw request target, query string included. */
  url: string;
  status: number;
  authorization: 'none' | 'basic' | 'bearer' | 'other';
}

export class RequestLog {
  readonly #entries: LoggedRequest[] = [];

  constructor(readonly name: string) {}

  record(entry: LoggedRequest): void {
    this.#entries.push(entry);
  }

  mark(): number {
    return this.#entries.length;
  }

  since(mark = 0): LoggedRequest[] {
    return this.#entries.slice(mark);
  }

  /** "METHOD path" lines since `mark`, the form assertions compare against. */
  linesSince(mark = 0): string[] {
    return this.since(mark).map((entry) => `${entry.method} ${entry.path}`);
  }
}

export function authorizationKind(header: string | undefined): LoggedRequest['authorization'] {
  if (!header) return 'none';
  if (/^basic /i.test(header)) return 'basic';
  if (/^bearer /i.test(header)) return 'bearer';
  return 'other';
}

export function listenOnLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
