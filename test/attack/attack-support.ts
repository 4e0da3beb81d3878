/**
 * What the phases of the attack run (scripts/attack.ts) share: the report they add checks to,
 * mirror configs and processes (the real build, test/bench/mirror-process.ts), requests that
 * never throw, and the state of a cache (rows in its metadata database, files on disk, RSS).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { get, type TestResponse } from '../helpers/http.js';
import { REPO_ROOT } from '../interop/support/mirror.js';
import { treeRss } from '../bench/process-tree.js';

export const MAIN = path.join(REPO_ROOT, 'dist', 'main.js');

/** Every media type a mirror may serve a manifest with (OCI and Docker manifests and indexes, image-spec 1.1 artifacts). */
export const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.artifact.manifest.v1+json',
]);

export const ACCEPT = [...MANIFEST_TYPES].join(', ');

export interface Check {
  phase: string;
  check: string;
  ok: boolean;
  detail: string;
}

export class Report {
  readonly checks: Check[] = [];
  readonly facts: Array<{ phase: string; name: string; value: unknown }> = [];
  #phase = '';

  phase(name: string): void {
    this.#phase = name;
    process.stdout.write(`\n== ${name}\n`);
  }

  check(check: string, ok: boolean, detail = ''): void {
    this.checks.push({ phase: this.#phase, check, ok, detail });
    process.stdout.write(`${ok ? 'PASS' : 'FAIL'}  ${check}${detail ? `  (${detail})` : ''}\n`);
  }

  fact(name: string, value: unknown): void {
    this.facts.push({ phase: this.#phase, name, value });
    process.stdout.write(`      ${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
  }

  get failed(): Check[] {
    return this.checks.filter((entry) => !entry.ok);
  }
}

export interface Outcome {
  status: number;
  headers: TestResponse['headers'];
  body: Buffer;
  /** Set when the response broke off (the body did not complete). */
  error?: string;
}

/** A GET that reports a broken response instead of throwing. */
export async function tryGet(url: string, headers: Record<string, string> = {}, timeoutMs = 15_000): Promise<Outcome> {
  try {
    const response = await get(url, headers, { headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs });
    return { status: response.status, headers: response.headers, body: response.body };
  } catch (error) {
    return { status: 0, headers: {}, body: Buffer.alloc(0), error: (error as Error).message };
  }
}

export function writeConfig(dir: string, name: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `${name}.config.json`);
  writeFileSync(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, log: { level: 'warn' }, defaultUpstream: 'docker.io', ...config }, null, 2));
  return file;
}

/** Rows per table of the cache's metadata database (read-only, beside the running server). */
export function rowCounts(cacheDir: string, tables = ['verdicts', 'links', 'blobs', 'manifests', 'tags', 'repositories']): Record<string, number> {
  const db = new Database(path.join(cacheDir, 'metadata.db'), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(tables.map((table) => [table, db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number]));
  } finally {
    db.close();
  }
}

/** Files under the cache directory other than the metadata database and its WAL. */
export function fileCount(cacheDir: string): number {
  return readdirSync(cacheDir, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile() && !entry.name.startsWith('metadata.db')).length;
}

/** RSS of the server with its workers (`serve` runs one per core by default). */
export function rssMb(pid: number): number {
  return Math.round(treeRss(pid).now / 1024 / 102.4) / 10;
}

export const sha256Of = async (bytes: Buffer) => `sha256:${(await import('node:crypto')).createHash('sha256').update(bytes).digest('hex')}`;
