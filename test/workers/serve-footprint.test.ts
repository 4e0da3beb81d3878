/**
 * What each process of `serve` loads (issue 13: the RSS of a two-core `serve`, a primary and two
 * workers, is one budget). The primary only coordinates: it must not carry the HTTP stack, the
 * upstream client or the cache. No process compiles the config schema at start-up: its validator
 * is generated ahead of time (src/config/validator-code.ts), so neither TypeBox nor ajv's compiler
 * is loaded.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RECORDER = path.join(ROOT, 'test/helpers/record-imports.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'serve-footprint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The module URLs a fresh process resolves while it runs `script` (an ES module body). */
function importsOf(name: string, script: string): string[] {
  const record = path.join(dir, `${name}.imports`);
  writeFileSync(record, '');
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--import', RECORDER, '--input-type=module', '-e', script], {
    cwd: ROOT, env: { ...process.env, RECORD_IMPORTS_TO: record }, encoding: 'utf8', timeout: 60_000,
  });
  expect(run.status, run.stderr).toBe(0);
  return readFileSync(record, 'utf8').split('\n').filter(Boolean);
}

const config = path.join(dir, 'mirror.config.json');
writeFileSync(config, JSON.stringify({ cache: { dir: path.join(dir, 'cache') }, upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' } } }));
const loadConfig = `const { loadConfig } = await import('./src/config/load-config.ts'); await loadConfig(${JSON.stringify(config)});`;
const SCHEMA_COMPILERS = ['/node_modules/@sinclair/typebox/', '/node_modules/ajv/dist/ajv.js', '/src/config/schema.ts'];

const loadedFrom = (urls: string[], fragments: string[]) => urls.filter((url) => fragments.some((fragment) => url.includes(fragment)));

describe('serve --workers: what each process loads', () => {
  it('the primary: its coordinator and the config, not the HTTP stack, the upstream client, the cache or a schema compiler', () => {
    const urls = importsOf('primary', `${loadConfig} await import('./src/cli/serve-primary.ts');`);
    expect(loadedFrom(urls, ['/src/cli/serve-primary.ts', '/src/workers/primary-coordinator.ts', '/src/config/config-validator.generated.ts'])).toHaveLength(3);
    expect(loadedFrom(urls, ['/node_modules/@hono/', '/node_modules/hono/', '/node_modules/undici/', '/node_modules/better-sqlite3/', '/src/compose.ts', '/src/cli/serve-process.ts', ...SCHEMA_COMPILERS])).toEqual([]);
  });

  it('a worker: the whole mirror, and still no schema compiler', () => {
    const urls = importsOf('worker', `${loadConfig} await import('./src/cli/serve-process.ts'); await import('./src/compose.ts');`);
    expect(loadedFrom(urls, ['/node_modules/@hono/node-server/', '/node_modules/undici/', '/src/compose.ts'])).not.toEqual([]);
    expect(loadedFrom(urls, SCHEMA_COMPILERS)).toEqual([]);
  });
});
