/**
 * Writes a cache directory's metadata exactly as releases before the SQLite store did, written
 * here from the format (no import of the old code, which is gone):
 *
 *   metadata/<namespace>.json  { "cache": [["<namespace>:<key>", { "value": <keyv string>, "updatedAt": ms, "expire"?: ms }]],
 *                                "deleted": [["<namespace>:<key>", ms]] }
 *   keyv string                JSON of { "value": <record>, "expires"?: ms }; strings starting with ':' get one more ':'
 *   keyv-file's own files      { "cache": [[key, { "value": <keyv string>, "expire"?: ms }]], "lastExpire": ms }
 *   sources/<alg>/<2hex>/<hex> JSON array of "<upstream>/<repository>"
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface FixtureEntry {
  key: string;
  value: unknown;
  /** keyv's expiry inside the serialized value. */
  expires?: number;
  /** The file store's (and keyv-file's) own expiry beside the value. */
  expire?: number;
}

/** keyv's serialisation: `{value, expires}` as JSON, escaping strings that start with ':'. */
export function keyvString(value: unknown, expires?: number): string {
  const escape = (_key: string, item: unknown) => (typeof item === 'string' && item.startsWith(':') ? `:${item}` : item);
  return JSON.stringify(expires === undefined ? { value } : { value, expires }, escape);
}

export async function writeNamespaceFile(
  cacheDir: string, namespace: string, entries: FixtureEntry[],
  options: { deleted?: string[]; keyvFileFormat?: boolean; rawValues?: Map<string, unknown> } = {},
): Promise<void> {
  const cache = entries.map((entry, i) => {
    const stored: Record<string, unknown> = { value: options.rawValues?.get(entry.key) ?? keyvString(entry.value, entry.expires) };
    if (!options.keyvFileFormat) stored.updatedAt = 1_700_000_000_000 + i;
    if (entry.expire !== undefined) stored.expire = entry.expire;
    return [`${namespace}:${entry.key}`, stored];
  });
  const content = options.keyvFileFormat
    ? { cache, lastExpire: 1_700_000_000_000 }
    : { cache, deleted: (options.deleted ?? []).map((key) => [`${namespace}:${key}`, 1_700_000_000_000]) };
  await mkdir(path.join(cacheDir, 'metadata'), { recursive: true });
  await writeFile(path.join(cacheDir, 'metadata', `${namespace}.json`), JSON.stringify(content));
}

export async function writeSourcesFile(cacheDir: string, digest: string, content: string): Promise<void> {
  const [algorithm, hex] = digest.split(':') as [string, string];
  const dir = path.join(cacheDir, 'sources', algorithm, hex.slice(0, 2));
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, hex), content);
}
