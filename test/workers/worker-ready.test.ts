/**
 * A worker tells its primary it is ready (serve-process.ts). When the primary was killed while
 * the worker started, that message fails (EPIPE, or the channel already closed); it used to be
 * an unhandled 'error' that ended the worker with a stack trace on stderr instead of the quiet
 * exit the cluster module gives a worker whose primary is gone. A real child process with a
 * real IPC channel.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/ready-after-primary-gone.ts', import.meta.url));

it('a worker whose primary is gone says it is ready without an error', async () => {
  const child = fork(FIXTURE, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => void (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  // 'exit', not 'close': tsx's esbuild process keeps the child's stderr open a while longer.
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise((resolve) => child.once('message', resolve));
  child.disconnect();
  const code = await exited;
  await waitFor(() => stdout.length > 0 || stderr.length > 0, 10_000, 'what the child printed');
  expect(code).toBe(0);
  expect(stderr).toBe('');
  expect(stdout).toBe('still here\n');
}, 30_000);
