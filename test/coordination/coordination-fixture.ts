/**
 * What the coordination tests share: "replicas" (each with its own Redis connections, as separate
 * processes have), a child process that is a real separate replica and can be killed with
 * SIGKILL, and small waiting helpers that always have a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisCoordination, type RedisCoordinationOptions } from '../../src/coordination/redis-coordination.js';
import { RedisFlights } from '../../src/coordination/redis-flights.js';
import { RedisLeases } from '../../src/coordination/redis-leases.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const childScript = path.join(here, 'coordination-child-process.ts');

/** A log that keeps what was said, to count outage messages. */
export class RecordingLog {
  readonly warnings: string[] = [];
  readonly infos: string[] = [];
  warn(_: object, message: string): void {
    this.warnings.push(message);
  }
  info(_: object, message: string): void {
    this.infos.push(message);
  }
}

export interface Replica {
  readonly connection: RedisCoordination;
  readonly leases: RedisLeases;
  readonly flights: RedisFlights;
  readonly log: RecordingLog;
}

/** Opens connections and closes them all at the end of each test. */
export class Replicas {
  readonly #connections: RedisCoordination[] = [];

  async open(options: RedisCoordinationOptions & { owner?: string; leaseTtlMs?: number; pollIntervalMs?: number }): Promise<Replica> {
    const connection = this.connect(options);
    await connection.ready(10_000);
    const log = new RecordingLog();
    const leases = new RedisLeases(connection, { pollIntervalMs: options.pollIntervalMs ?? 100 });
    const flights = new RedisFlights({ leases, owner: options.owner ?? 'http://127.0.0.1:1/', leaseTtlMs: options.leaseTtlMs ?? 1_000, log });
    return { connection, leases, flights, log };
  }

  /** A connection that is not waited for (Redis may be down on purpose). */
  connect(options: RedisCoordinationOptions): RedisCoordination {
    const connection = new RedisCoordination(options);
    this.#connections.push(connection);
    return connection;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.#connections.splice(0).map((connection) => connection.close()));
  }
}

export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true, failing after `deadlineMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, deadlineMs: number, what: string): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await Promise.resolve(check()).catch(() => false))) {
    if (Date.now() > until) throw new Error(`${what}: not within ${deadlineMs} ms`);
    await sleep(25);
  }
}

export interface ChildReplica {
  readonly child: ChildProcess;
  /** Resolves with the child's first line of output ("owning", "holding"). */
  readonly started: Promise<string>;
  /** SIGKILL: no handler runs, nothing is released; what the child held must expire. */
  kill(): Promise<void>;
}

/** A separate process (see coordination-child-process.ts for the modes and their arguments). */
export function startChildReplica(args: string[]): ChildReplica {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const started = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child replica did not start within 20 s: ${output}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('\n')) return;
      clearTimeout(timer);
      resolve(output.slice(0, output.indexOf('\n')));
    });
    child.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`child replica exited (${code ?? signal}) before starting: ${output}`));
    });
  });
  started.catch(() => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    started,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
