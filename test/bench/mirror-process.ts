/**
 * A build of the mirror run as users run it, for the benchmarks and the attack run: `serve`
 * (ready once /v2/ answers 200, with the time that took) and one-shot commands (import, warm)
 * with a deadline. Processes are stopped by their own PID, never by name.
 */
import { spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { createInterface } from 'node:readline';
import { get } from './registry-client.js';

export interface ServerProcess {
  url: string;
  pid: number;
  /** From spawning `serve` to the first 200 (or 401, with client auth) on /v2/. */
  readyMs: number;
  /** True while the process runs. */
  alive(): boolean;
  stop(): Promise<void>;
}

export function timedCommand(main: string, args: string[], timeoutS: number): Promise<{ ms: number; code: number | null; timedOut: boolean; output: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--max-semi-space-size=4', main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000)));
  child.stderr.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutS * 1000);
  return new Promise((resolve) => child.once('exit', (code) => {
    clearTimeout(timer);
    resolve({ ms: performance.now() - started, code, timedOut, output });
  }));
}

/** `serve` on the config; `readyMs` from spawning to the first 200 on /v2/. */
export async function startServer(main: string, config: string, extra: string[] = []): Promise<ServerProcess> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--max-semi-space-size=4', main, 'serve', '--config', config, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => void (output = (output + chunk.toString()).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve printed no "listening" line in 120 s: ${output}`)), 120_000);
      void exited.then((code) => reject(new Error(`serve exited with ${code}: ${output}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const entry = (() => { try { return JSON.parse(line) as { msg?: string; url?: string }; } catch { return {}; } })();
        if (entry.msg === 'listening' && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      });
    });
    const agent = new Agent({ keepAlive: false });
    for (;;) {
      const response = await get(`${url}/v2/`, agent).catch(() => undefined);
      response?.resume();
      // 401: the mirror answers, asking for credentials (auth.htpasswd).
      if (response?.statusCode === 200 || response?.statusCode === 401) break;
      if (performance.now() - started > 120_000) throw new Error('/v2/ not 200 within 120 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    agent.destroy();
    return { url, pid: child.pid!, readyMs: performance.now() - started, alive: () => child.exitCode === null && child.signalCode === null, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

