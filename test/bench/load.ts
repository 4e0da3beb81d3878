/**
 * Runs one client job in a child process (load-client.ts) with a deadline and returns its
 * JSON answer. While it runs, `onTick` is called every 100 ms (the memory scenario samples RSS).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type LoadJob =
  | { kind: 'pull'; base: string; repo: string; tag: string; parallel: number; headers?: Record<string, string> }
  | { kind: 'blob'; base: string; repo: string; digest: string; size: number; headers?: Record<string, string> }
  /**
   * `startAt` (epoch ms): the herd waits for it once its connections are open, so herds run by
   * several client processes start at one instant, not each when its process has booted.
   */
  | { kind: 'herd'; base: string; repo: string; digest: string; size: number; clients: number; verify: boolean; startAt?: number }
  | { kind: 'password-flood'; base: string; clients: number; durationMs: number; user: string; firstAddress: string };

/** Statuses of every request the wrong-password clients sent, e.g. { '401': 100, '429': 9000 }. */
export interface FloodOutcome {
  requests: number;
  statuses: Record<string, number>;
  errors: number;
}

export interface HerdOutcome {
  wallMs: number;
  clientMs: number[];
  ttfbMs: number[];
  failures: string[];
}

const CLIENT = fileURLToPath(new URL('./load-client.ts', import.meta.url));

export function runLoad<T>(job: LoadJob, deadlineMs: number, onTick?: () => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLIENT, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const ticker = onTick ? setInterval(onTick, 100) : undefined;
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`${job.kind} client did not finish within ${deadlineMs} ms`));
    }, deadlineMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      clearInterval(ticker);
      if (code !== 0) return reject(new Error(`${job.kind} client failed (${code}): ${stderr.trim().slice(-500)}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new Error(`${job.kind} client printed no result: ${stdout.slice(-300)} ${stderr.slice(-300)}`));
      }
    });
  });
}
