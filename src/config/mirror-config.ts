/**
 * The mirror's configuration: its type, its defaults, and validation that names the bad key.
 *
 * All three come from one description, src/config/schema.ts (TypeBox). Its JSON Schema, shipped
 * as mirror.config.schema.json, is compiled by ajv ahead of time into
 * config-validator.generated.ts (validator-code.ts says why), which also fills in the defaults, so
 * editors, tooling and the process agree on what is valid. A few rules a schema cannot express
 * are checked after it.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Static } from '@sinclair/typebox';
import { resolveS3StorageConfig, S3ConfigError } from '../storage/s3/s3-config.js';
import { parseAccessPolicy } from '../hosted/access-rules.js';
import { parseNotificationEndpoints } from '../hosted/notification-config.js';
import { RepositoryPatterns } from '../hosted/repository-patterns.js';
import { normalizeRegistryHost } from '../domain/registry-host.js';
import { ConfigError } from './config-error.js';
import { validate as generatedValidator } from './config-validator.generated.js';
import type { METADATA_STORES, UpstreamSchema, ValidatedConfig } from './schema.js';

export { ConfigError };

export type UpstreamConfig = Static<typeof UpstreamSchema>;

/** Where tags, verdicts and usage live; "file" in a config file is read as "sqlite". */
export type MetadataStoreKind = 'sqlite' | 'memory' | 'redis';

export type MirrorConfig = Omit<ValidatedConfig, '$schema' | 'defaultUpstream' | 'metadata'> & {
  /**
   * docker.io when configured, else the first upstream, when the file names none. null: names
   * without a registry prefix are hosted repositories (the registry:2 behaviour).
   */
  defaultUpstream: string | null;
  metadata: { store: MetadataStoreKind; redisUrl?: string; maxVerdicts: number };
};

// It writes every missing key's default into the data while it validates (ajv's useDefaults).
const validateSchema = generatedValidator as unknown as ValidateFunction<ValidatedConfig>;

/** Validates raw config data (already merged with environment overrides) and fills defaults. */
export function parseMirrorConfig(raw: unknown): MirrorConfig {
  const input = structuredClone(raw);
  if (!validateSchema(input)) throw new ConfigError(describeSchemaErrors(raw, validateSchema.errors ?? []));
  const { $schema: _schema, defaultUpstream: named, metadata, ...rest } = input;
  const defaultUpstream = resolveDefaultUpstream(named, input.upstreams);
  checkHosted(input);
  if (metadata.store === 'redis' && !metadata.redisUrl) {
    throw new ConfigError('metadata.redisUrl: required when metadata.store is "redis"');
  }
  checkStorage(rest.storage);
  return {
    ...rest,
    cache: { ...rest.cache, maxBytes: parseByteSize('cache.maxBytes', rest.cache.maxBytes as number | string) },
    metadata: { ...metadata, store: metadataStoreKind(metadata.store) },
    defaultUpstream,
  };
}

/** storage.s3 is required with the s3 driver, and must hold a bucket name and endpoint S3 accepts. */
function checkStorage(storage: ValidatedConfig['storage']): void {
  if (storage.driver !== 's3') return;
  if (!storage.s3) throw new ConfigError('storage.s3: required when storage.driver is "s3" (at least { "bucket": "..." })');
  try {
    resolveS3StorageConfig(storage.s3);
  } catch (error) {
    if (error instanceof S3ConfigError) throw new ConfigError(error.message);
    throw error;
  }
}

function resolveDefaultUpstream(named: string | null | undefined, upstreams: Record<string, unknown>): string | null {
  if (named === null) return null;
  const names = Object.keys(upstreams);
  if (names.length === 0) throw new ConfigError('upstreams: expected at least one upstream registry, or "defaultUpstream": null for a registry that only hosts what is pushed to it');
  const defaultUpstream = named ?? ('docker.io' in upstreams ? 'docker.io' : names[0]!);
  if (!(defaultUpstream in upstreams)) {
    throw new ConfigError(`defaultUpstream: expected the name of a configured upstream (${names.join(', ')}), got ${JSON.stringify(defaultUpstream)}`);
  }
  return defaultUpstream;
}

/**
 * Hosted patterns, access rules and notification endpoints, beyond what the schema says. A name
 * is hosted or proxied, never both: a pattern whose first component is a configured registry
 * would claim names that registry's path prefix routes to it.
 */
function checkHosted(config: ValidatedConfig): void {
  const patterns = RepositoryPatterns.parse(config.hosted.repositories, 'hosted.repositories');
  const upstreams = new Set(Object.keys(config.upstreams).map(normalizeRegistryHost));
  patterns.patterns.forEach((pattern, index) => {
    const first = pattern.source.split('/')[0]!;
    if (upstreams.has(normalizeRegistryHost(first))) {
      throw new ConfigError(`hosted.repositories[${index}]: ${JSON.stringify(pattern.source)} starts with the upstream ${first}, whose names are proxied; a name is hosted or proxied, never both`);
    }
  });
  parseAccessPolicy(config);
  parseNotificationEndpoints(config.notifications?.endpoints);
}

function metadataStoreKind(store: (typeof METADATA_STORES)[number]): MetadataStoreKind {
  return store === 'file' ? 'sqlite' : store;
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
