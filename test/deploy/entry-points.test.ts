/**
 * Every way the project starts the server passes node the same V8 flags: `npm start`, the bin's
 * shebang (npx registry-mirror), the Dockerfile's ENTRYPOINT, the systemd unit, and the launcher
 * the interop suite and the benchmark use. The flags bound the young generation, which is what
 * keeps RSS flat under a herd (see docs/benchmarks.md); a launcher without them would measure
 * or ship a different server.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../interop/support/mirror.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(`${ROOT}${file}`, 'utf8');

/** The tokens between `node` and the script path on a command line. */
function nodeFlags(commandLine: string[]): string[] {
  const script = commandLine.findIndex((token) => token.endsWith('dist/main.js'));
  const node = commandLine.findIndex((token) => token === 'node' || token.endsWith('/node'));
  expect(node).toBeGreaterThanOrEqual(0);
  expect(script).toBeGreaterThan(node);
  return commandLine.slice(node + 1, script);
}

describe('server entry points', () => {
  it('the launcher used by the interop suite and the benchmark sets flags at all', () => {
    expect(NODE_FLAGS.length).toBeGreaterThan(0);
  });

  it('npm start', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    expect(nodeFlags(start.split(' '))).toEqual(NODE_FLAGS);
  });

  it('the bin shebang', () => {
    const shebang = read('src/main.ts').split('\n')[0]!;
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    expect(shebang.split(' ').slice(3)).toEqual(NODE_FLAGS);
  });

  it('the Dockerfile ENTRYPOINT', () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    expect(entrypoint).toBeDefined();
    expect(nodeFlags(JSON.parse(entrypoint!) as string[])).toEqual(NODE_FLAGS);
  });

  it('the systemd unit', () => {
    const execStart = /^ExecStart=(.*)$/m.exec(read('deploy/systemd/registry-mirror.service'))?.[1];
    expect(execStart).toBeDefined();
    expect(nodeFlags(execStart!.split(' '))).toEqual(NODE_FLAGS);
  });
});
