/**
 * `registry-mirror serve` as a real child process (from the sources through tsx, no build), for
 * tests that need a second process on the same cache or a kill -9: started with a config file,
 * found by its "listening" log line, stopped by its process group: `serve` runs a worker per
 * core by default, and a SIGKILL of the primary alone leaves the workers (which hold the
 * connections and the upload files) to exit on their own, after kill() has resolved.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Its log entries so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Lines of its stdout that are not log entries (what `--trace-gc` prints, say). */
  otherLines: string[];
  /** SIGKILL to the primary and its workers at once, and resolves once the primary is gone. */
  kill(): Promise<void>;
}

export interface ServeProcessOptions {
  /** Node's own flags, before the script. */
  nodeArgs?: string[];
  /** More arguments to `serve` (`--workers 1`). */
  serveArgs?: string[];
  /** Its environment; default this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Writes `config` (listen on loopback, port 0, quiet logs added) beside the cache and starts a server on it. */
export async function serveProcess(workDir: string, name: string, config: Record<string, unknown>, options: ServeProcessOptions = {}): Promise<ServeProcess> {
  const configFile = path.join(workDir, `${name}.config.json`);
  await writeFile(configFile, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, log: { level: 'warn' }, ...config }));
  const args = [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts', 'serve', '--config', configFile, ...(options.serveArgs ?? [])];
  const child = spawn(process.execPath, args, { cwd: PROJECT_ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const killAll = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch (error) {
      // The group is gone already.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };
  const logs: Array<Record<string, unknown>> = [];
  const otherLines: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s`)), 30_000);
    void exited.then(() => reject(new Error(`${name} exited before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return void otherLines.push(line);
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      logs.push(entry);
      if (entry.msg === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  }).catch((error: unknown) => {
    killAll();
    throw error;
  });
  return {
    url, child, logs, otherLines,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) killAll();
      await exited;
    },
  };
}
