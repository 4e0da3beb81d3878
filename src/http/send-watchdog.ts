/**
 * Cuts off clients that stop reading a blob body (issue 12 item 9): a response whose socket
 * is full and has taken no byte for `listen.sendTimeoutSeconds` is destroyed, which closes its
 * connection, its file and the sendfile addon's descriptor, as nginx's `send_timeout` does.
 * Without it, a client that stops reading holds three descriptors for as long as it keeps its
 * connection open.
 *
 * Only a client the mirror is waiting for counts: its socket is full (Node's buffer past the
 * high-water mark for copies and streams, or the sendfile loop waiting for the socket), and the
 * bytes sent have not moved. A download in progress whose upstream is slow leaves the socket
 * empty, so its clients are never cut off for that. One timer serves every response, and only
 * while there are responses to watch.
 */
import type { ServerResponse } from 'node:http';
import { ProgressWatch } from '../coordination/progress-watch.js';
import { bytesSentBySendfile, isWaitingForSocket } from './send-file-zero-copy.js';

export class SendWatchdog {
  readonly #watch: ProgressWatch<ServerResponse>;

  constructor(readonly timeoutMs: number) {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`expected listen.sendTimeoutSeconds to be a positive number, got ${timeoutMs / 1000}`);
    this.#watch = new ProgressWatch({
      limitMs: timeoutMs,
      checkEveryMs: Math.max(25, Math.floor(timeoutMs / 4)),
      progress: bytesSent,
      moved: (outgoing, advanced) => advanced !== 0 || !waitingForClient(outgoing),
      expire: (outgoing) => outgoing.destroy(new Error(`the client took no byte for ${timeoutMs / 1000} s (listen.sendTimeoutSeconds)`)),
    });
  }

  /** Watches `outgoing` until it closes. */
  watch(outgoing: ServerResponse): void {
    this.#watch.watch(outgoing);
    outgoing.once('close', () => this.#watch.forget(outgoing));
  }
}

function bytesSent(outgoing: ServerResponse): number {
  return (outgoing.socket?.bytesWritten ?? 0) + bytesSentBySendfile(outgoing);
}

function waitingForClient(outgoing: ServerResponse): boolean {
  return outgoing.writableNeedDrain || isWaitingForSocket(outgoing);
}
