/**
 * The optional native sendfile(2) addon (src/native/sendfile.c, built into dist/native by
 * `npm ci`). When it is missing (no C compiler at install, not Linux) or fails to load, cached
 * blobs are copied through user space instead (send-file.ts); `sendfileAddonStatus` says which
 * and why, for the start-up log and /api/status.
 */
import { loadNativeAddon } from './native-addon.js';

/** A sendfile transfer: the addon's handle for one response's socket. */
export type SendfileTransfer = { readonly __brand: 'SendfileTransfer' };

export interface SendfileAddon {
  /** The most one `sendResident` call sends. */
  readonly WINDOW_BYTES: number;
  /** `sendResident`'s answer when part of the window is not in the page cache: use `send`. */
  readonly NOT_RESIDENT: number;
  /**
   * On the event loop, from pages already in the page cache, at most WINDOW_BYTES: bytes sent
   * (fewer than `count`: the socket is full), NOT_RESIDENT (nothing sent), or -errno.
   */
  sendResident(socketFd: number, fileFd: number, offset: number, count: number): number;
  /** A handle that can wait for the socket and send from the thread pool; holds a dup() of it. */
  open(socketFd: number): SendfileTransfer;
  /** On the thread pool, may read from disk; errno 0 with sent < count: the socket is full. */
  send(transfer: SendfileTransfer, fileFd: number, offset: number, count: number, callback: (sent: number, errno: number) => void): void;
  /** Calls back once the socket takes more bytes (errno 0) or failed. */
  waitWritable(transfer: SendfileTransfer, callback: (errno: number) => void): void;
  close(transfer: SendfileTransfer): void;
  /** Sets or clears TCP_CORK on a plain TCP socket: 0, or -errno. */
  cork(socketFd: number, on: boolean): number;
}

export type SendfileAddonStatus = { available: true } | { available: false; reason: string };

function load(): { addon?: SendfileAddon; status: SendfileAddonStatus } {
  const loaded = loadNativeAddon<SendfileAddon>('sendfile');
  if (!loaded.addon) return { status: { available: false, reason: loaded.reason } };
  // A plain object over the native exports (which are fixed): tests can observe calls on it.
  return { addon: { ...loaded.addon }, status: { available: true } };
}

const loaded = load();

export const sendfileAddon: SendfileAddon | undefined = loaded.addon;
export const sendfileAddonStatus: SendfileAddonStatus = loaded.status;
