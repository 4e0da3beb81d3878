/**
 * bcrypt comparisons off the event loop. bcrypt is slow on purpose (about 70 ms at cost 10 in
 * bcryptjs); on the event loop every wrong password stalled every other request. The checks run
 * in a small pool of worker threads of our own (1 by default), never in libuv's thread pool,
 * which serves file I/O and the sendfile addon: a password flood must not slow blob reads.
 *
 * The queue in front of the workers is bounded. Beyond it a check is refused at once with
 * ServerBusyError (503 + Retry-After): a full queue means the mirror as a whole has more logins
 * to check than it can, which is no single client's fault (per-client floods are stopped
 * earlier, by the failure limits in htpasswd.ts, with 429).
 *
 * Where the OS allows it (Linux), the workers run at a lower scheduling priority than the event
 * loop: on a machine short of cores, serving cached content goes before checking passwords.
 *
 * The worker's code is a short CommonJS script evaluated in the thread (workers load no
 * TypeScript, and the same code must run from src/ under the tests and from dist/): it loads
 * bcryptjs from the path the main thread resolved and answers one message per comparison.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { MirrorError, ServerBusyError } from '../domain/errors.js';

export interface CompareOptions {
  /**
   * Checks for clients without recent failures: they go before the others, and a full queue
   * makes room for them by refusing its newest other check. Then a flood (whose clients all
   * have failures after their first guess) cannot make an honest login wait behind it.
   */
  urgent?: boolean;
}

export interface PasswordComparer {
  /** True when `password` matches the bcrypt `hash`; false for a malformed hash. */
  compare(password: string, hash: string, options?: CompareOptions): Promise<boolean>;
}

export interface BcryptWorkerPoolOptions {
  /** Worker threads; default 1, so a flood can take at most one core from serving. */
  workers?: number;
  /** Checks waiting for a worker before new ones are refused; default 32. */
  maxQueued?: number;
}

/** Seconds a client is asked to wait when the queue is full: a few comparisons' time. */
const BUSY_RETRY_AFTER_SECONDS = 1;

/** How much nicer (lower priority) than the process the comparisons' threads run (nice(1) steps). */
const WORKER_NICENESS = 10;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcryptPath);
lowerThreadPriority();
parentPort.on('message', ({ password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage(ok === true);
});
// Linux: setpriority(2) given a thread id changes that thread only. ${WORKER_NICENESS} steps nicer than
// the process, comparisons yield the CPU to the event loop when cores are short. Elsewhere: as is.
function lowerThreadPriority() {
  try {
    const os = require('node:os');
    const threadId = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
    os.setPriority(threadId, Math.min(19, os.getPriority(threadId) + ${WORKER_NICENESS}));
  } catch {}
}
`;

function busy(): ServerBusyError {
  return new ServerBusyError('too many logins are being checked; retry shortly', BUSY_RETRY_AFTER_SECONDS);
}

interface Job {
  password: string;
  hash: string;
  resolve(ok: boolean): void;
  reject(error: Error): void;
}

/** A worker failed (it should not: the script catches everything); the check cannot be trusted. */
class PasswordWorkerError extends MirrorError {
  readonly code = 'UNAVAILABLE';
}

export class BcryptWorkerPool implements PasswordComparer {
  readonly #size: number;
  readonly #maxQueued: number;
  readonly #bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<Worker, Job>();
  readonly #urgent: Job[] = [];
  readonly #queue: Job[] = [];
  #started = 0;
  #closed = false;

  constructor({ workers = 1, maxQueued = 32 }: BcryptWorkerPoolOptions = {}) {
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`expected workers to be a positive integer, got ${workers}`);
    if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new RangeError(`expected maxQueued to be a non-negative integer, got ${maxQueued}`);
    this.#size = workers;
    this.#maxQueued = maxQueued;
  }

  compare(password: string, hash: string, { urgent = false }: CompareOptions = {}): Promise<boolean> {
    if (this.#closed) return Promise.reject(new PasswordWorkerError('the password checker is closed'));
    const hasWorker = this.#idle.length > 0 || this.#started < this.#size;
    if (!hasWorker && this.#urgent.length + this.#queue.length >= this.#maxQueued) {
      const displaced = urgent ? this.#queue.pop() : undefined;
      if (!displaced) return Promise.reject(busy());
      displaced.reject(busy());
    }
    return new Promise((resolve, reject) => {
      (urgent ? this.#urgent : this.#queue).push({ password, hash, resolve, reject });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of [...this.#urgent.splice(0), ...this.#queue.splice(0)]) job.reject(new PasswordWorkerError('the password checker is closed'));
    const workers = [...this.#idle.splice(0), ...this.#busy.keys()];
    for (const job of this.#busy.values()) job.reject(new PasswordWorkerError('the password checker is closed'));
    this.#busy.clear();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  #dispatch(): void {
    while (this.#urgent.length + this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? (this.#started < this.#size ? this.#spawn() : undefined);
      if (!worker) return;
      const job = this.#urgent.shift() ?? this.#queue.shift()!;
      this.#busy.set(worker, job);
      // Only a worker with work in hand keeps the process alive.
      worker.ref();
      worker.postMessage({ password: job.password, hash: job.hash });
    }
  }

  #spawn(): Worker {
    this.#started += 1;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcryptPath: this.#bcryptPath } });
    worker.unref();
    worker.on('message', (ok: boolean) => this.#finished(worker, ok));
    worker.on('error', (error) => this.#lost(worker, error));
    worker.on('exit', (code) => this.#lost(worker, new Error(`password worker exited with code ${code}`)));
    return worker;
  }

  #finished(worker: Worker, ok: boolean): void {
    const job = this.#busy.get(worker);
    this.#busy.delete(worker);
    worker.unref();
    if (this.#closed) return;
    this.#idle.push(worker);
    job?.resolve(ok);
    this.#dispatch();
  }

  /** A lost worker fails its check (503, not a wrong password) and is replaced on demand. */
  #lost(worker: Worker, error: Error): void {
    const job = this.#busy.get(worker);
    const idleIndex = this.#idle.indexOf(worker);
    if (!job && idleIndex === -1) return; // already accounted for ('error' is followed by 'exit')
    this.#busy.delete(worker);
    if (idleIndex !== -1) this.#idle.splice(idleIndex, 1);
    this.#started -= 1;
    job?.reject(new PasswordWorkerError(`password check failed: ${error.message}`));
    if (!this.#closed) this.#dispatch();
  }
}
