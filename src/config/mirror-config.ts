/**
 * The mirror's configuration: its type, its defaults, and validation that names the bad key.
 *
 * The JSON Schema shipped at the repository root (mirror.config.schema.json) is the single
 * description of the file; it is compiled here with ajv, so editors, tooling and the process
 * agree on what is valid. A few rules a schema cannot express are checked after it.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';

export interface UpstreamConfig {
  /** Base URL, e.g. https://registry-1.docker.io */
  url: string;
  username?: string;
  password?: string;
  /** Hosts besides the upstream's own that may act as its token realm. */
  tokenRealms: string[];
}

export interface MirrorConfig {
  listen: { host: string; port: number };
  cache: { dir: string; maxBytes: number };
  tags: { ttlSeconds: number; staleIfErrorSeconds: number | null };
  fetch: {
    maxConcurrent: number;
    connectTimeoutSeconds: number;
    headersTimeoutSeconds: number;
    idleTimeoutSeconds: number;
    fillTimeoutSeconds: number;
  };
  /** sqlite (default; "file", the name of earlier releases, means the same): one file under cache.dir. */
  metadata: { store: 'sqlite' | 'file' | 'memory' | 'redis'; redisUrl?: string };
  offline: boolean;
  log: { level: string };
  defaultUpstream: string;
  upstreams: Record<string, UpstreamConfig>;
  /** PEM files; when set the mirror serves HTTPS. */
  tls?: { cert: string; key: string };
  /** When set, clients need Basic credentials from this htpasswd file (bcrypt entries). */
  auth?: { htpasswd: string };
  /**
   * nginx in front serves cached blob bodies itself (X-Accel-Redirect to `redirectPrefix` +
   * the file's path under `<cache.dir>/blobs/`). Only for deployments where every request goes
   * through that nginx: the mirror's own answer to a cache hit then has no body.
   */
  accel?: { redirectPrefix: string };
  /**
   * Cached blob bodies go out with sendfile(2) when the native addon is built and the socket is
   * plain TCP (http/send-file.ts); false copies them through user space.
   */
  sendfile: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const schemaPath = new URL('../../mirror.config.schema.json', import.meta.url);
const validateSchema = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));

/** Validates raw config data (already merged with environment overrides) and fills defaults. */
export function parseMirrorConfig(raw: unknown): MirrorConfig {
  if (!validateSchema(raw)) throw new ConfigError(describeSchemaErrors(raw, validateSchema.errors ?? []));
  const input = raw as RawConfig;
  const upstreams = Object.fromEntries(
    Object.entries(input.upstreams).map(([name, upstream]) => [name, { ...upstream, tokenRealms: upstream.tokenRealms ?? [] }]),
  );
  const defaultUpstream = input.defaultUpstream ?? ('docker.io' in upstreams ? 'docker.io' : Object.keys(upstreams)[0]!);
  if (!(defaultUpstream in upstreams)) {
    throw new ConfigError(`defaultUpstream: expected the name of a configured upstream (${Object.keys(upstreams).join(', ')}), got ${JSON.stringify(defaultUpstream)}`);
  }
  const metadata = { store: input.metadata?.store ?? 'sqlite', redisUrl: input.metadata?.redisUrl };
  if (metadata.store === 'redis' && !metadata.redisUrl) {
    throw new ConfigError('metadata.redisUrl: required when metadata.store is "redis"');
  }
  return {
    listen: { host: input.listen?.host ?? '0.0.0.0', port: input.listen?.port ?? 5000 },
    cache: { dir: input.cache?.dir ?? './data', maxBytes: parseByteSize('cache.maxBytes', input.cache?.maxBytes ?? 50 * 2 ** 30) },
    tags: { ttlSeconds: input.tags?.ttlSeconds ?? 300, staleIfErrorSeconds: input.tags?.staleIfErrorSeconds ?? null },
    fetch: {
      maxConcurrent: input.fetch?.maxConcurrent ?? 16,
      connectTimeoutSeconds: input.fetch?.connectTimeoutSeconds ?? 10,
      headersTimeoutSeconds: input.fetch?.headersTimeoutSeconds ?? 30,
      idleTimeoutSeconds: input.fetch?.idleTimeoutSeconds ?? 60,
      fillTimeoutSeconds: input.fetch?.fillTimeoutSeconds ?? 3600,
    },
    metadata,
    offline: input.offline ?? false,
    log: { level: input.log?.level ?? 'info' },
    defaultUpstream,
    upstreams,
    ...(input.tls ? { tls: { cert: input.tls.cert, key: input.tls.key } } : {}),
    ...(input.auth ? { auth: { htpasswd: input.auth.htpasswd } } : {}),
    ...(input.accel ? { accel: { redirectPrefix: input.accel.redirectPrefix } } : {}),
    sendfile: input.sendfile ?? true,
  };
}

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1e3, KB: 1e3, KIB: 2 ** 10, M: 1e6, MB: 1e6, MIB: 2 ** 20, G: 1e9, GB: 1e9, GIB: 2 ** 30, T: 1e12, TB: 1e12, TIB: 2 ** 40 };

/** Accepts a byte count or a size such as "50GiB" (binary) or "500MB" (decimal). */
export function parseByteSize(key: string, value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  const unit = UNITS[(match?.[2] ?? '?').toUpperCase()];
  const bytes = match && unit ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new ConfigError(`${key}: expected a positive byte count such as 53687091200 or "50GiB", got ${JSON.stringify(value)}`);
  }
  return bytes;
}

function describeSchemaErrors(raw: unknown, errors: ErrorObject[]): string {
  // oneOf failures repeat once per branch; the first error per key is the useful one.
  const byKey = new Map<string, string>();
  for (const error of errors) {
    const key = keyOf(error);
    if (byKey.has(key)) continue;
    const value = valueAt(raw, error.instancePath);
    byKey.set(key, `${key || '(root)'}: ${explain(error)}, got ${JSON.stringify(value)}`);
  }
  return `invalid configuration: ${[...byKey.values()].join('; ')}`;
}

function keyOf(error: ErrorObject): string {
  const path = error.instancePath.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (error.keyword === 'additionalProperties') path.push(String(error.params.additionalProperty));
  if (error.keyword === 'required') path.push(String(error.params.missingProperty));
  if (error.keyword === 'propertyNames') path.push(String(error.params.propertyName));
  return path.join('.');
}

function explain(error: ErrorObject): string {
  switch (error.keyword) {
    case 'additionalProperties': return 'is not a known key';
    case 'required': return 'is required';
    case 'propertyNames': return 'must be a registry host name such as gcr.io or localhost:5000';
    case 'enum': return `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'oneOf': return 'must be a positive byte count or a size string such as "50GiB"';
    case 'pattern': return `must match ${error.params.pattern}`;
    default: return error.message ?? 'is invalid';
  }
}

function valueAt(raw: unknown, pointer: string): unknown {
  let node = raw;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

interface RawConfig {
  listen?: { host?: string; port?: number };
  cache?: { dir?: string; maxBytes?: number | string };
  tags?: { ttlSeconds?: number; staleIfErrorSeconds?: number | null };
  fetch?: Partial<MirrorConfig['fetch']>;
  metadata?: { store?: MirrorConfig['metadata']['store']; redisUrl?: string };
  offline?: boolean;
  log?: { level?: string };
  defaultUpstream?: string;
  upstreams: Record<string, Omit<UpstreamConfig, 'tokenRealms'> & { tokenRealms?: string[] }>;
  tls?: { cert: string; key: string };
  auth?: { htpasswd: string };
  accel?: { redirectPrefix: string };
  sendfile?: boolean;
}
