/**
 * Reads the configuration file and applies environment overrides, so that secrets and
 * per-host settings need not sit in the file:
 *
 *   MIRROR_CONFIG                         path of the file (default ./mirror.config.json)
 *   MIRROR_PORT, MIRROR_HOST              listen.port, listen.host
 *   MIRROR_CACHE_DIR                      cache.dir
 *   MIRROR_LOG_LEVEL                      log.level
 *   MIRROR_ACCEL_REDIRECT_PREFIX          accel.redirectPrefix (nginx in front only; empty: leave as is)
 *   MIRROR_CLUSTER_ADVERTISE_URL          cluster.advertiseUrl (each replica's own address; empty: leave as is)
 *   MIRROR_UPSTREAM_<NAME>_USERNAME       upstreams[<name>].username
 *   MIRROR_UPSTREAM_<NAME>_PASSWORD       upstreams[<name>].password
 *     <NAME> is the upstream's key upper-cased with every other character than A-Z and 0-9
 *     turned into "_": docker.io -> DOCKER_IO, localhost:5000 -> LOCALHOST_5000.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, parseMirrorConfig, type MirrorConfig } from './mirror-config.js';

export const DEFAULT_CONFIG_PATH = './mirror.config.json';

export async function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Promise<MirrorConfig> {
  const configPath = file ?? env.MIRROR_CONFIG ?? DEFAULT_CONFIG_PATH;
  const raw = await readConfigFile(configPath);
  const config = parseMirrorConfig(applyEnvironment(raw, env));
  // A relative cache directory is relative to the config file, not to wherever the process started.
  if (!env.MIRROR_CACHE_DIR) config.cache.dir = path.resolve(path.dirname(configPath), config.cache.dir);
  else config.cache.dir = path.resolve(config.cache.dir);
  // Certificate, key and htpasswd files are named relative to the config file, like cache.dir.
  const besideConfig = (file: string) => path.resolve(path.dirname(configPath), file);
  if (config.tls) config.tls = { cert: besideConfig(config.tls.cert), key: besideConfig(config.tls.key) };
  if (config.auth) config.auth = { ...config.auth, htpasswd: besideConfig(config.auth.htpasswd) };
  return config;
}

async function readConfigFile(configPath: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${configPath}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config file ${configPath} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Returns a copy of the raw config with environment overrides applied (before validation). */
export function applyEnvironment(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const config = structuredClone(raw) as Record<string, any>;
  if (env.MIRROR_PORT !== undefined) config.listen = { ...config.listen, port: parsePort(env.MIRROR_PORT) };
  if (env.MIRROR_HOST !== undefined) config.listen = { ...config.listen, host: env.MIRROR_HOST };
  if (env.MIRROR_CACHE_DIR !== undefined) config.cache = { ...config.cache, dir: env.MIRROR_CACHE_DIR };
  if (env.MIRROR_LOG_LEVEL !== undefined) config.log = { ...config.log, level: env.MIRROR_LOG_LEVEL };
  // Empty counts as unset, so Compose can pass `${MIRROR_ACCEL_REDIRECT_PREFIX:-}` through.
  if (env.MIRROR_ACCEL_REDIRECT_PREFIX) config.accel = { ...config.accel, redirectPrefix: env.MIRROR_ACCEL_REDIRECT_PREFIX };
  // Replicas share one config file; each learns its own address from its environment (a pod IP).
  if (env.MIRROR_CLUSTER_ADVERTISE_URL) config.cluster = { ...config.cluster, advertiseUrl: env.MIRROR_CLUSTER_ADVERTISE_URL };
  if (config.upstreams && typeof config.upstreams === 'object') {
    for (const [name, upstream] of Object.entries<Record<string, unknown>>(config.upstreams)) {
      if (!upstream || typeof upstream !== 'object') continue;
      const prefix = `MIRROR_UPSTREAM_${upstreamEnvName(name)}_`;
      if (env[`${prefix}USERNAME`] !== undefined) upstream.username = env[`${prefix}USERNAME`];
      if (env[`${prefix}PASSWORD`] !== undefined) upstream.password = env[`${prefix}PASSWORD`];
    }
  }
  return config;
}

export function upstreamEnvName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

function parsePort(value: string): number | string {
  return /^[0-9]+$/.test(value) ? Number(value) : value;
}
