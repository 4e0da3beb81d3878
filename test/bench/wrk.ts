/** wrk (Debian package `wrk`) for a fixed duration, its result read from wrk-report.lua's line. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { assertLoopback } from './registry-client.js';

const REPORTER = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

export interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p90: number; p99: number; max: number };
}

/** The reporter's `done` hook, to append to a script of one's own (`runWrk`'s `script`). */
export const WRK_REPORTER = REPORTER;

/** `script`: a Lua file that ends with WRK_REPORTER's text (default: that file alone). */
export function runWrk(url: string, connections: number, durationS: number, headers: Record<string, string> = {}, script = REPORTER): Promise<WrkResult> {
  assertLoopback(url);
  const args = ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${durationS}s`, '--timeout', '30s', '-s', script];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), (durationS + 60) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      const match = /BENCHJSON (\{.*\})/.exec(output);
      if (!match?.[1]) return reject(new Error(`wrk failed (${code}): ${output.slice(-500)}`));
      resolve(JSON.parse(match[1]) as WrkResult);
    });
  });
}

/** Error counts of several wrk runs, added up by kind. */
export function sumWrkErrors(errors: Array<WrkResult['errors']>): WrkResult['errors'] {
  const total = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 };
  for (const entry of errors) for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += entry[key];
  return total;
}
