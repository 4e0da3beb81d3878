/**
 * Child processes of the interop environment: started with their output in a log file, tracked
 * by PID, and stopped by PID (TERM, then KILL after a deadline). Nothing is ever stopped by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const STOP_DEADLINE_MS = 10_000;

export interface StartedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<number | null>;
}

/** Owns every process it starts; `stopAll` ends them in reverse start order. */
export class ProcessGroup {
  readonly #processes: StartedProcess[] = [];

  start(name: string, command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): StartedProcess {
    const fd = openSync(logFile, 'a');
    const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: env ?? process.env });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(null));
    });
    const started = { name, pid: child.pid, logFile, child, exited };
    this.#processes.push(started);
    return started;
  }

  async stopAll(): Promise<void> {
    for (const started of this.#processes.splice(0).reverse()) await stopByPid(started);
  }
}

export async function stopByPid(started: StartedProcess): Promise<void> {
  if (started.child.exitCode !== null || started.child.signalCode !== null) return;
  process.kill(started.pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), STOP_DEADLINE_MS).unref());
  if ((await Promise.race([started.exited, timer])) === 'timeout') {
    process.kill(started.pid, 'SIGKILL');
    await started.exited;
  }
}

/** Last lines of a process log, for error messages. */
export function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A port the OS considers free right now, for programs that cannot report the port they bound
 * (docker-registry). Ports 5100-5199 belong to the shared test bed and are never handed out.
 */
export async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const bound = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(bound));
      });
    });
    if (port < 5100 || port > 5199) return port;
  }
  throw new Error('no free loopback port outside 5100-5199');
}

/** Polls `url` until it answers with any HTTP status, the process dies, or the deadline passes. */
export async function waitForHttp(url: string, started: StartedProcess, deadlineMs = 30_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) throw new Error(`${started.name} exited (${started.child.exitCode}):\n${logTail(started.logFile)}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`${started.name} did not answer ${url} within ${deadlineMs} ms:\n${logTail(started.logFile)}`);
}
