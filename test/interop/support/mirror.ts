/**
 * The mirror under test, run as users run it: `node dist/main.js serve --config <file>`, with a
 * config pointing at the counting proxies. With `listen.port: 0` the mirror prints one JSON log
 * line containing `"msg":"listening"` and its `"url"` on stdout; that is how we find it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { stopByPid, logTail, type StartedProcess } from './processes.js';
import { HUB_USER, HUB_PASSWORD } from './token-server.js';
import type { Upstreams } from './upstreams.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BUILT_MAIN = join(REPO_ROOT, 'dist', 'main.js');
/** INTEROP_MIRROR_MAIN runs the suite against another build of the mirror (no build step then). */
const MAIN = process.env.INTEROP_MIRROR_MAIN ?? BUILT_MAIN;
/**
 * The V8 flags every shipped entry point runs the mirror with (npm start, the bin's shebang, the
 * Dockerfile, the systemd unit; test/deploy/entry-points.test.ts keeps them equal): a 4 MiB
 * young generation keeps RSS flat under a herd of streaming clients.
 */
export const NODE_FLAGS = ['--max-semi-space-size=4'];
const LISTEN_DEADLINE_MS = 30_000;
/** How long every serving process gets to open its cache and greet its upstreams after `listening`. */
const SETTLE_DEADLINE_MS = 30_000;

export interface RunningMirror {
  readonly url: string;
  readonly cacheDir: string;
  readonly process: StartedProcess;
  stop(): Promise<void>;
}

/** Builds dist/ once when it is missing or older than any file under src/. */
export function ensureMirrorBuilt(): void {
  if (MAIN !== BUILT_MAIN) return;
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newestMtime(join(REPO_ROOT, 'src'))) return;
  try {
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 180_000 });
  } catch (error) {
    const failure = error as { stdout?: Buffer; stderr?: Buffer; message: string };
    const output = `${failure.stdout?.toString() ?? ''}${failure.stderr?.toString() ?? ''}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`npm run build failed, so the mirror cannot start:\n${output || failure.message}`);
  }
  if (!existsSync(MAIN)) throw new Error(`npm run build did not produce ${MAIN}`);
}

function newestMtime(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((newest, entry) => {
    const path = join(dir, entry.name);
    return Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }, 0);
}

/** Top-level config keys that replace the defaults below (e.g. `tls`, `auth`, `log`). */
export type MirrorConfigOverrides = Record<string, unknown>;

export function writeMirrorConfig(dir: string, upstreams: Upstreams, overrides: MirrorConfigOverrides = {}): string {
  const config = {
    listen: { host: '127.0.0.1', port: 0 },
    cache: { dir: join(dir, 'cache'), maxBytes: 10 * 1024 ** 3 },
    tags: { ttlSeconds: 300 },
    fetch: { maxConcurrent: 16 },
    metadata: { store: 'file' },
    log: { level: 'warn' },
    defaultUpstream: 'docker.io',
    upstreams: {
      'docker.io': {
        url: upstreams.hub.proxy.url, username: HUB_USER, password: HUB_PASSWORD,
        tokenRealms: [`127.0.0.1:${upstreams.token.port}`],
        // The CDN stand-in is on loopback: only a host the config names may be.
        redirectHosts: [new URL(upstreams.cdn.url).host],
      },
      'gcr.io': { url: upstreams.gcr.proxy.url },
    },
    ...overrides,
  };
  const file = join(dir, 'mirror.config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Extra arguments after `serve --config <file>` (e.g. `--workers 1`) and environment variables. */
export interface MirrorProcessOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
}

export async function startMirror(dir: string, upstreams: Upstreams, overrides: MirrorConfigOverrides = {}, options: MirrorProcessOptions = {}): Promise<RunningMirror> {
  ensureMirrorBuilt();
  mkdirSync(dir, { recursive: true });
  const configFile = writeMirrorConfig(dir, upstreams, overrides);
  const greetings = startupGreetings(configFile, upstreams, options.args ?? []);
  const logFile = join(dir, 'mirror.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const args = [...NODE_FLAGS, MAIN, 'serve', '--config', configFile, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  if (child.pid === undefined) throw new Error('could not start the mirror');
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started: StartedProcess = { name: 'mirror', pid: child.pid, logFile, child, exited };
  try {
    const url = await listeningUrl(started, log);
    await greetings.seen(started);
    const stop = async () => {
      await stopByPid(started);
      log.end();
    };
    return { url, cacheDir: join(dir, 'cache'), process: started, stop };
  } catch (error) {
    await stopByPid(started);
    log.end();
    throw error;
  }
}

/**
 * The `GET /v2/` every serving process sends each upstream once its cache is open, to learn how
 * it authenticates (src/upstream/upstream-registry.ts learnChallenge). `listening` comes before
 * that: workers listen first and open the cache after. A test that counts upstream requests right
 * after the start would count a slow worker's greeting as caused by its own requests (CI, stop 31:
 * `GET /v2/` at hub among requests that must reach no upstream). So startMirror returns only once
 * each process has greeted each stand-in the config points at (none when offline).
 */
function startupGreetings(configFile: string, upstreams: Upstreams, args: string[]): { seen(started: StartedProcess): Promise<void> } {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as { offline?: boolean; upstreams?: Record<string, { url?: string }> };
  const urls = new Set(Object.values(config.upstreams ?? {}).map((upstream) => upstream.url));
  const proxies = config.offline ? [] : [upstreams.hub.proxy, upstreams.gcr.proxy].filter((proxy) => urls.has(proxy.url));
  const marks = proxies.map((proxy) => proxy.requests.mark());
  const processes = servingProcesses(args);
  const greeted = () => proxies.every((proxy, index) => proxy.requests.linesSince(marks[index]).filter((line) => line === 'GET /v2/').length >= processes);
  return {
    async seen(started) {
      const deadline = Date.now() + SETTLE_DEADLINE_MS;
      while (!greeted()) {
        if (Date.now() > deadline) throw new Error(`not every one of the mirror's ${processes} serving processes sent GET /v2/ to ${proxies.map((proxy) => proxy.requests.name).join(' and ')} within ${SETTLE_DEADLINE_MS} ms of listening (did one fail to open the cache?):\n${logTail(started.logFile)}`);
        await sleep(10);
      }
    },
  };
}

/** How many processes serve: `--workers N`, else one per CPU (src/cli/serve.ts workerCount). */
function servingProcesses(args: string[]): number {
  const index = args.findIndex((arg) => arg === '--workers' || arg.startsWith('--workers='));
  if (index === -1) return availableParallelism();
  const value = args[index]!.includes('=') ? args[index]!.split('=')[1] : args[index + 1];
  return Number(value);
}

/** Reads stdout lines (copying them to the log) until the `listening` line, exit, or the deadline. */
function listeningUrl(started: StartedProcess, log: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mirror printed no "listening" line within ${LISTEN_DEADLINE_MS} ms (the contract: printed on stdout even at log.level "warn"):\n${logTail(started.logFile)}`)), LISTEN_DEADLINE_MS);
    void started.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`mirror exited with ${code} before listening:\n${logTail(started.logFile)}`));
    });
    const stdout = started.child.stdout;
    if (!stdout) return reject(new Error('mirror stdout is not piped'));
    createInterface({ input: stdout }).on('line', (line) => {
      log.write(`${line}\n`);
      const url = parseListening(line);
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
  });
}

function parseListening(line: string): string | undefined {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === 'listening' && typeof entry.url === 'string' ? entry.url : undefined;
  } catch {
    return undefined;
  }
}
