/**
 * A real redis-server for tests: started on a free loopback port found here (never the ports the
 * test bed owns), without persistence, and stopped afterwards. Suites that need Redis use
 * `describe.skipIf(!redisServerInstalled())` so `npm test` passes on a machine without it; CI
 * installs Debian's redis-server.
 *
 *   const redis = await startRedisServer();   // redis.url is redis://127.0.0.1:<port>
 *   await redis.pause(); await redis.resume(); // a hung server (SIGSTOP / SIGCONT)
 *   await redis.stop(); await redis.restart(); // a server that is down, then back on the same port
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { serviceMissing } from './required-services.js';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGTERM, then SIGKILL after a deadline). Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Freezes the process: connections stay open, nothing is answered. */
  pause(): void;
  resume(): void;
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server';
const START_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 5_000;

let installed: boolean | undefined;

export const REDIS_SKIP_MESSAGE = `redis-server is not installed (looked for "${BINARY}"; set REDIS_SERVER to its path): the Redis tests are skipped`;

/**
 * True when redis-server can be run here; says once per test file when it cannot. With
 * MIRROR_TEST_REQUIRE_SERVICES=1 (CI) a missing redis-server throws instead (required-services.ts).
 */
export function redisServerInstalled(): boolean {
  if (installed === undefined) {
    installed = spawnSync(BINARY, ['--version'], { stdio: 'ignore' }).status === 0;
    serviceMissing(!installed, `redis-server is not installed (looked for "${BINARY}")`);
    if (!installed) console.warn(REDIS_SKIP_MESSAGE);
  }
  return installed;
}

/** Ports of the test bed (BRIEF: 5100-5199, 6390, 6789, 7480); the OS may hand one out. */
function reserved(port: number): boolean {
  return (port >= 5100 && port <= 5199) || port === 6390 || port === 6789 || port === 7480;
}

export async function startRedisServer(): Promise<RedisServer> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freeLoopbackPort();
    if (reserved(port)) continue;
    try {
      return await launch(port);
    } catch (error) {
      // Another process took the port between the check and the start: try another one.
      if (attempt === 4) throw error;
    }
  }
  throw new Error('no free loopback port for redis-server');
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from the OS');
  return address.port;
}

async function launch(port: number): Promise<RedisServer> {
  let child = await spawnServer(port);
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => stopProcess(child),
    async restart() {
      await stopProcess(child);
      child = await spawnServer(port);
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
  return server;
}

/** Resolves once the server logs that it accepts connections; rejects if it exits or is too slow. */
function spawnServer(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--loglevel', 'notice'];
  const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server on port ${port} not ready after ${START_DEADLINE_MS} ms:\n${output}`)), START_DEADLINE_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    };
    const onExit = (code: number | null) => fail(new Error(`redis-server on port ${port} exited with ${code}:\n${output}`));
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onOutput);
      child.off('exit', onExit);
      child.stdout!.resume();
      resolve(child);
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
    child.once('error', fail);
    child.once('exit', onExit);
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGCONT');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}
