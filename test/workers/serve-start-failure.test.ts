/**
 * `serve --workers 2` whose workers cannot start (a configuration the primary cannot check: a
 * port in use, an htpasswd file that is not there, a cache directory that is a file): the command
 * ends with exit 1 and the reason, naming the key to change; it does not restart workers that
 * fail the same way forever. Real processes: `node dist/main.js serve`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { ensureMirrorBuilt, NODE_FLAGS, REPO_ROOT } from '../interop/support/mirror.js';

let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Runs serve with the config `extra(dir)` adds until it exits (SIGKILL after 30 s), with its JSON log lines. */
async function serveUntilExit(extra: (dir: string) => Record<string, unknown>): Promise<{ code: number | null; lines: Array<Record<string, unknown>> }> {
  ensureMirrorBuilt();
  const base = await mkdtemp(path.join(tmpdir(), 'mirror-start-failure-'));
  dir = base;
  const configFile = path.join(base, 'mirror.config.json');
  const config = { listen: { host: '127.0.0.1', port: 0 }, log: { level: 'info' }, cache: { dir: path.join(base, 'cache') }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } }, ...extra(base) };
  await writeFile(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(REPO_ROOT, 'dist', 'main.js'), 'serve', '--config', configFile, '--workers', '2'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // 'close', not 'exit': the workers' last lines may still be in the pipe when the primary exits.
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, lines };
}

function errorMessages(lines: Array<Record<string, unknown>>): string[] {
  return lines.flatMap((line) => {
    const message = (line.err as { message?: unknown } | undefined)?.message;
    return typeof message === 'string' ? [message] : [];
  });
}

describe('serve --workers 2 whose workers cannot open the cache', () => {
  it('an htpasswd file that is not there: exit 1 naming auth.htpasswd, no worker restarted', { timeout: 60_000 }, async () => {
    const { code, lines } = await serveUntilExit((base) => ({ auth: { htpasswd: path.join(base, 'missing.htpasswd') } }));
    expect(code).toBe(1);
    expect(errorMessages(lines).some((message) => message.startsWith('auth.htpasswd: cannot read'))).toBe(true);
    expect(lines.filter((line) => line.msg === 'a worker died: starting another')).toEqual([]);
  });

  it('a cache directory that is a file: exit 1 naming it, no worker restarted', { timeout: 60_000 }, async () => {
    const { code, lines } = await serveUntilExit((base) => ({ cache: { dir: path.join(base, 'mirror.config.json') } }));
    expect(code).toBe(1);
    expect(errorMessages(lines).some((message) => message.includes('mirror.config.json'))).toBe(true);
    expect(lines.filter((line) => line.msg === 'a worker died: starting another')).toEqual([]);
  });

  it('a port in use: exit 1 naming listen.port', { timeout: 60_000 }, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code, lines } = await serveUntilExit(() => ({ listen: { host: '127.0.0.1', port } }));
      expect(code).toBe(1);
      const fatal = lines.find((line) => line.level === 60);
      expect(fatal?.msg).toBe(`cannot listen on 127.0.0.1:${port}: change listen.host or listen.port`);
      expect((fatal?.err as { code?: string } | undefined)?.code).toBe('EADDRINUSE');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
