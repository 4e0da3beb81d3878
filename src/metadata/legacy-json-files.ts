/**
 * Reads what releases before the SQLite store left in a cache directory, for
 * migrate-json-metadata.ts. Nothing here writes.
 *
 *   <cache.dir>/metadata/<namespace>.json   one keyv namespace each: tags, repositories, usage, access
 *     { "cache": [[ "<namespace>:<key>", { "value": "<keyv string>", "updatedAt"?: ms, "expire"?: ms } ]],
 *       "deleted"?: [[ key, ms ]] }            (keyv-file's format, plus updatedAt and tombstones)
 *     where "<keyv string>" is keyv's serialisation, JSON of { "value": <record>, "expires"?: ms },
 *     strings starting with ":" escaped by one more ":" (keyv's @keyv/serialize)
 *   <cache.dir>/sources/<algorithm>/<2 hex>/<hex>   JSON array of "<upstream>/<repository>"
 *
 * Keys: tags `<upstream>/<repository>:<tag>`; repositories `<upstream>/<repository>` (its tag
 * list) and `*catalog` (every name); usage `usage` (one record); access `<upstream>/<repository>`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface LegacyEntry {
  /** The key without its namespace prefix. */
  key: string;
  value: unknown;
  /** keyv's expiry (ms since the epoch), when the entry had one. */
  expires?: number;
}

export interface LegacyNamespace {
  entries: LegacyEntry[];
  /** Entries dropped: expired, or values that do not decode. */
  skipped: number;
}

/** The live entries of one namespace file; undefined when there is no file. Throws SyntaxError when it does not parse. */
export async function readLegacyNamespace(file: string, namespace: string, now: number): Promise<LegacyNamespace | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const content = JSON.parse(text) as { cache?: unknown };
  if (!Array.isArray(content.cache)) throw new SyntaxError(`${file}: no "cache" array`);
  const result: LegacyNamespace = { entries: [], skipped: 0 };
  const prefix = `${namespace}:`;
  for (const item of content.cache as unknown[]) {
    const entry = decodeEntry(item, prefix, now);
    if (entry) result.entries.push(entry);
    else result.skipped += 1;
  }
  return result;
}

function decodeEntry(item: unknown, prefix: string, now: number): LegacyEntry | undefined {
  if (!Array.isArray(item) || typeof item[0] !== 'string' || !item[0].startsWith(prefix)) return undefined;
  const stored = item[1] as { value?: unknown; expire?: unknown } | undefined;
  if (typeof stored?.expire === 'number' && stored.expire <= now) return undefined;
  let data: unknown = stored?.value;
  try {
    if (typeof data === 'string') data = JSON.parse(data, unescapeKeyvStrings);
  } catch {
    return undefined;
  }
  const { value, expires } = (data ?? {}) as { value?: unknown; expires?: unknown };
  if (value === undefined || value === null) return undefined;
  if (typeof expires === 'number' && expires <= now) return undefined;
  return { key: item[0].slice(prefix.length), value, expires: typeof expires === 'number' ? expires : undefined };
}

/** keyv escaped strings that start with ':' by doubling it (Buffers were ':base64:...', never in these records). */
function unescapeKeyvStrings(_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(':') ? value.slice(1) : value;
}

export interface LegacySource {
  digest: string;
  repositories: string[];
}

/** Every readable sources file; torn or foreign files are counted in `skipped`, not thrown. */
export async function* readLegacySources(sourcesDir: string, onSkipped: () => void): AsyncIterable<LegacySource> {
  for (const algorithm of await listDirectory(sourcesDir)) {
    if (!/^[a-z0-9]+$/.test(algorithm)) continue;
    for (const fanOut of await listDirectory(path.join(sourcesDir, algorithm))) {
      if (!/^[a-f0-9]{2}$/.test(fanOut)) continue;
      for (const hex of await listDirectory(path.join(sourcesDir, algorithm, fanOut))) {
        // Leftover temp files (`<hex>.<uuid>.tmp`) of a write a crash interrupted are skipped here.
        if (!/^[a-f0-9]+$/.test(hex) || !hex.startsWith(fanOut)) continue;
        const repositories = await readSourceFile(path.join(sourcesDir, algorithm, fanOut, hex));
        if (repositories) yield { digest: `${algorithm}:${hex}`, repositories };
        else onSkipped();
      }
    }
  }
}

async function readSourceFile(file: string): Promise<string[] | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    return Array.isArray(parsed) ? parsed.filter((name): name is string => typeof name === 'string' && name !== '') : undefined;
  } catch {
    return undefined;
  }
}

async function listDirectory(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw error;
  }
}
