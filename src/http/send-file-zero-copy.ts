/**
 * Sends a byte range of a blob file with sendfile(2) (sendfile-addon.ts): the kernel hands
 * page-cache pages to the socket and the bytes never enter user space, as nginx serves files.
 * The file is a cached blob, or one still downloading (a herd following one fetch), whose bytes
 * are sent as the download writes them, the last one after the digest check (GrowingFile). The
 * headers still go out through Node's ServerResponse; the body starts only once they are in the
 * kernel, and the response is ended through Node afterwards (it writes nothing more: the length
 * was declared), so keep-alive works as for any other response.
 *
 * The loop never blocks the event loop: pages already in the page cache are sent from it, a
 * window that needs the disk is sent from the thread pool, a full socket is waited for with a
 * poll, and a download with nothing new by its progress events. At most one window is sent per
 * turn of the loop, so one fast client of a large blob cannot starve the others.
 */
import { closeSync, openSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { GrowingFile } from '../storage/content-store.js';
import type { SendfileAddon, SendfileTransfer } from './sendfile-addon.js';

/** Body bytes that went out by sendfile, which the socket's own `bytesWritten` does not count. */
const bodyBytesSent = new WeakMap<ServerResponse, number>();

export function bytesSentBySendfile(outgoing: ServerResponse): number {
  return bodyBytesSent.get(outgoing) ?? 0;
}

/** Responses whose sendfile loop waits for a full socket: the client is not taking bytes (send-watchdog.ts). */
const waitingForSocket = new WeakSet<ServerResponse>();

export function isWaitingForSocket(outgoing: ServerResponse): boolean {
  return waitingForSocket.has(outgoing);
}

/**
 * The descriptor of a plain TCP socket while Node holds it open; none for TLS, whose bytes must
 * pass through OpenSSL. Node drops `_handle` in the same tick as it closes the descriptor, so a
 * number read here is this socket's, never one the kernel has since reused for another file.
 */
export function plainSocketFd(socket: Socket): number | undefined {
  if ((socket as Socket & { encrypted?: boolean }).encrypted) return undefined;
  const fd = (socket as Socket & { _handle?: { fd?: number } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function sendfileError(errno: number, path: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno);
  const error: NodeJS.ErrnoException = new Error(`sendfile ${path}: ${code}`);
  error.code = code;
  error.errno = errno;
  return error;
}

/** A published file, all of it readable at once. */
export function publishedFile(path: string): GrowingFile {
  return {
    openSync: () => openSync(path, 'r'),
    readable: (position, end) => end - position + 1,
    onceChanged: () => () => {},
    finalSize: () => undefined,
  };
}

export interface ZeroCopyBody {
  file: GrowingFile;
  /** Names the file in errors. */
  name: string;
  start: number;
  /** Inclusive. */
  end: number;
  /** Runs exactly once, when the file is no longer read, with the error if there was one. */
  done: (error?: Error) => void;
}

/**
 * Writes bytes [start, end] of `file` to `outgoing` (head set, not yet written) on its plain
 * TCP `socket`, and ends it. An error destroys the response, so the client sees it cut short,
 * never complete.
 */
export function sendFileRangeZeroCopy(addon: SendfileAddon, outgoing: ServerResponse, socket: Socket, { file, name, start, end, done }: ZeroCopyBody): void {
  let position = start;
  let fileFd: number | undefined;
  // Set while waiting for a download to write more.
  let cancelChangeWait: (() => void) | undefined;
  // Opened only when the response has to wait for its socket or for the disk (sendWindow).
  let transfer: SendfileTransfer | undefined;
  let sendInFlight = false;
  let finished = false;

  const closeFile = () => {
    if (fileFd !== undefined) closeSync(fileFd);
    fileFd = undefined;
  };
  const finish = (error?: Error) => {
    if (finished) return;
    finished = true;
    uncork();
    waitingForSocket.delete(outgoing);
    outgoing.off('close', onClientGone);
    cancelChangeWait?.();
    if (transfer) addon.close(transfer);
    // A thread-pool send still reads the file: it is closed when that send returns.
    if (!sendInFlight) closeFile();
    if (error) outgoing.destroy(error);
    done(error);
  };
  // Corked from the head to the last byte when all of it can be sent now (cork()).
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    // A socket Node has closed has no descriptor any more: nothing to uncork.
    const socketFd = plainSocketFd(socket);
    if (socketFd !== undefined) addon.cork(socketFd, false);
  };
  const onClientGone = () => finish();
  // Only with a descriptor read in this very tick (plainSocketFd): the transfer dup()s it.
  const openTransfer = (socketFd: number) => {
    transfer ??= addon.open(socketFd);
  };
  const advance = (sent: number) => {
    position += sent;
    bodyBytesSent.set(outgoing, (bodyBytesSent.get(outgoing) ?? 0) + sent);
  };

  const onWritable = (errno: number) => {
    waitingForSocket.delete(outgoing);
    if (finished) return;
    if (errno !== 0) return finish(sendfileError(errno, name));
    sendWindow();
  };
  const afterSend = (count: number, sent: number) => {
    if (sent < count) {
      waitingForSocket.add(outgoing);
      addon.waitWritable(transfer!, onWritable);
    } else if (position > end) sendWindow();
    else setImmediate(sendWindow);
  };
  const sendFromDisk = (count: number) => {
    sendInFlight = true;
    addon.send(transfer!, fileFd!, position, count, (sent, errno) => {
      sendInFlight = false;
      if (finished) return closeFile();
      advance(sent);
      if (errno !== 0) return finish(sendfileError(errno, name));
      afterSend(count, sent);
    });
  };
  const sendWindow = () => {
    if (finished) return;
    const remaining = end - position + 1;
    if (remaining <= 0) {
      uncork();
      outgoing.end();
      return finish();
    }
    // Node closed the socket (the 'close' event is still on its way): its number may be reused.
    const socketFd = plainSocketFd(socket);
    if (socketFd === undefined) return finish();
    try {
      const available = file.readable(position, end);
      if (available === 0) {
        cancelChangeWait = file.onceChanged(() => {
          cancelChangeWait = undefined;
          sendWindow();
        });
        return;
      }
      const count = Math.min(available, addon.WINDOW_BYTES);
      const sent = addon.sendResident(socketFd, fileFd!, position, count);
      if (sent === addon.NOT_RESIDENT || (sent >= 0 && sent < count)) openTransfer(socketFd);
      if (sent === addon.NOT_RESIDENT) return sendFromDisk(count);
      if (sent < 0) return finish(sendfileError(-sent, name));
      advance(sent);
      afterSend(count, sent);
    } catch (error) {
      finish(error as Error);
    }
  };

  outgoing.once('close', onClientGone);
  try {
    // open(2) of a local file the mirror wrote, on the loop: a thread-pool round trip per blob
    // measured slower (npm run bench, 3 MiB blobs), and nginx opens files the same way.
    fileFd = file.openSync();
  } catch (error) {
    return finish(error as Error);
  }
  // The head goes out through Node. flushHeaders() writes it at once, without the cork that
  // write() sets until the next tick; the body may start once Node has nothing queued, which an
  // empty write tells (its callback runs after everything queued before it; 'drain' would not
  // come if nothing had crossed the high-water mark).
  corked = wholeRangeReadable(file, start, end) && cork(addon, socket);
  outgoing.flushHeaders();
  if (socket.writableLength === 0) sendWindow();
  else socket.write(EMPTY, (error) => (error ? finish(error) : sendWindow()));
}

const EMPTY = Buffer.alloc(0);

/**
 * Sets TCP_CORK: the head and the body then leave in full segments, as nginx sends files with
 * `tcp_nopush`. Without it each write and sendfile pushed what it had, and a 3 MiB blob went out
 * in about 60% more segments, which cost the client's side of loopback a third more CPU per
 * response and the mirror 10% of its warm 3 MiB rate (docs/benchmarks.md).
 */
function cork(addon: SendfileAddon, socket: Socket): boolean {
  const socketFd = plainSocketFd(socket);
  return socketFd !== undefined && addon.cork(socketFd, true) === 0;
}

/**
 * True when every byte of the range can be sent at once (a cached blob). A download still under
 * way is not corked: its bytes go out as they arrive, never held for a full segment.
 */
function wholeRangeReadable(file: GrowingFile, start: number, end: number): boolean {
  return file.readable(start, end) === end - start + 1;
}
