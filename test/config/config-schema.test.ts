/**
 * The config is described once (src/config/schema.ts): the shipped JSON Schema is generated from
 * it, the defaults come from it, and validation names the bad key and value.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { ConfigError, parseMirrorConfig } from '../../src/config/mirror-config.js';
import { fileSchemaText } from '../../src/config/schema.js';
import { validatorModuleText } from '../../src/config/validator-code.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const HUB = { 'docker.io': { url: 'https://registry-1.docker.io' } };

const invalid = (raw: unknown): string => {
  try {
    parseMirrorConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('the shipped mirror.config.schema.json', () => {
  it('is what `npm run schema` generates from src/config/schema.ts', async () => {
    expect(await readFile(path.join(ROOT, 'mirror.config.schema.json'), 'utf8')).toBe(fileSchemaText());
  });

  it('and its validator, compiled ahead of time, are what `npm run schema` generates', async () => {
    expect(await readFile(path.join(ROOT, 'src/config/config-validator.generated.ts'), 'utf8')).toBe(validatorModuleText());
  });

  it('works on its own (as editors use it): the shipped configs pass, unknown keys and bad values do not', async () => {
    const validate = new Ajv({ strict: false }).compile(JSON.parse(await readFile(path.join(ROOT, 'mirror.config.schema.json'), 'utf8')));
    for (const file of ['mirror.config.json', 'mirror.registry.config.json', 'deploy/compose/mirror.config.json', 'deploy/compose/mirror.config.redis.json']) {
      expect(validate(JSON.parse(await readFile(path.join(ROOT, file), 'utf8'))), file).toBe(true);
    }
    expect(validate({ upstreams: HUB, cache: { maxBytes: '50GiB' }, metadata: { store: 'file' } })).toBe(true);
    expect(validate({ upstreams: HUB, surprise: 1 })).toBe(false);
    expect(validate({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io', redirectHosts: 'cdn' } } })).toBe(false);
  });
});

describe('defaults', () => {
  it('fills every key the file leaves out', () => {
    expect(parseMirrorConfig({ upstreams: { 'gcr.io': { url: 'https://gcr.io' }, ...HUB } })).toEqual({
      listen: { host: '0.0.0.0', port: 5000, sendTimeoutSeconds: 60 },
      cache: { dir: './data', maxBytes: 50 * 2 ** 30 },
      tags: { ttlSeconds: 300, staleIfErrorSeconds: null },
      fetch: {
        maxConcurrent: 16, connectTimeoutSeconds: 10, headersTimeoutSeconds: 30, idleTimeoutSeconds: 60, fillTimeoutSeconds: 3600,
        maxQueued: 1000, abandonStalledSeconds: 30, prefetch: true,
      },
      metadata: { store: 'sqlite', maxVerdicts: 100_000 },
      offline: false,
      log: { level: 'info' },
      defaultUpstream: 'docker.io',
      upstreams: {
        'gcr.io': { url: 'https://gcr.io', tokenRealms: [], redirectHosts: [] },
        'docker.io': { url: 'https://registry-1.docker.io', tokenRealms: [], redirectHosts: [] },
      },
      sendfile: true,
      storage: { driver: 'filesystem' },
      cluster: {},
      hosted: { repositories: [], allowAnonymousPush: false, trustForwardedHeaders: false, uploadExpirySeconds: 86400, gc: { intervalSeconds: 3600, graceSeconds: 3600 } },
    });
  });

  it('storage.driver "s3" needs storage.s3 with a bucket S3 accepts; its defaults are filled in', () => {
    const upstreams = HUB;
    expect(() => parseMirrorConfig({ upstreams, storage: { driver: 's3' } })).toThrow(/^storage\.s3: required when storage\.driver is "s3"/);
    expect(() => parseMirrorConfig({ upstreams, storage: { driver: 's3', s3: { bucket: 'Bad_Bucket' } } })).toThrow(/storage\.s3\.bucket: expected an S3 bucket name/);
    expect(() => parseMirrorConfig({ upstreams, storage: { driver: 'nfs' } })).toThrow(/storage\.driver: must be one of "filesystem", "s3"/);
    expect(() => parseMirrorConfig({ upstreams, cluster: { advertiseUrl: 'http://10.0.0.7:5000/path' } })).toThrow(/cluster\.advertiseUrl: must match/);
    const config = parseMirrorConfig({ upstreams, storage: { driver: 's3', s3: { endpoint: 'http://127.0.0.1:7000', bucket: 'mirror-blobs' } } });
    expect(config.storage).toEqual({ driver: 's3', s3: { endpoint: 'http://127.0.0.1:7000', bucket: 'mirror-blobs', forcePathStyle: false, prefix: '', redirect: false } });
  });

  it('keeps what the file gives, turns sizes into bytes and reads metadata.store "file" as "sqlite"', () => {
    const raw = {
      $schema: './mirror.config.schema.json',
      cache: { maxBytes: '2GiB' },
      metadata: { store: 'file' },
      upstreams: { 'gcr.io': { url: 'https://gcr.io', redirectHosts: ['cdn.internal', 'blobs.internal:8443'] } },
    };
    const config = parseMirrorConfig(raw);
    expect(config.cache.maxBytes).toBe(2 * 2 ** 30);
    expect(config.metadata.store).toBe('sqlite');
    expect(config.defaultUpstream).toBe('gcr.io');
    expect(config.upstreams['gcr.io']!.redirectHosts).toEqual(['cdn.internal', 'blobs.internal:8443']);
    expect(config).not.toHaveProperty('$schema');
    // The caller's object is left as it was.
    expect(raw).toEqual({ $schema: './mirror.config.schema.json', cache: { maxBytes: '2GiB' }, metadata: { store: 'file' }, upstreams: { 'gcr.io': { url: 'https://gcr.io', redirectHosts: ['cdn.internal', 'blobs.internal:8443'] } } });
    expect(parseMirrorConfig({ metadata: { store: 'memory' }, upstreams: HUB }).metadata.store).toBe('memory');
  });
});

describe('validation names the key and the value', () => {
  it.each([
    [{ cache: { maxBytes: '0.1B' }, upstreams: HUB }, 'cache.maxBytes: expected a positive byte count such as 53687091200 or "50GiB", got "0.1B"'],
    [{ cache: { maxBytes: '50 parsecs' }, upstreams: HUB }, 'invalid configuration: cache.maxBytes: must be integer, got "50 parsecs"'],
    [{ listen: { port: 70000, hots: 'x' }, upstreams: HUB }, 'invalid configuration: listen.hots: is not a known key, got {"port":70000,"hots":"x"}; listen.port: must be <= 65535, got 70000'],
    [{ tags: { staleIfErrorSeconds: -1 }, upstreams: HUB }, 'invalid configuration: tags.staleIfErrorSeconds: must be >= 0, got -1'],
    [{ fetch: { connectTimeoutSeconds: 0 }, upstreams: HUB }, 'invalid configuration: fetch.connectTimeoutSeconds: must be > 0, got 0'],
    [{ metadata: { store: 'mongo' }, upstreams: HUB }, 'invalid configuration: metadata.store: must be one of "sqlite", "file", "memory", "redis", got "mongo"'],
    [{ metadata: { store: 'redis' }, upstreams: HUB }, 'metadata.redisUrl: required when metadata.store is "redis"'],
    [{ log: { level: 'loud' }, upstreams: HUB }, 'invalid configuration: log.level: must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"'],
    [{ upstreams: { 'docker.io': { url: 'ftp://x' } } }, 'invalid configuration: upstreams.docker.io.url: must match ^https?://[^/?#@]+/?$, got "ftp://x"'],
    [{ upstreams: { 'docker.io': { url: 'https://x.io', redirectHosts: 'cdn.x.io' } } }, 'invalid configuration: upstreams.docker.io.redirectHosts: must be array, got "cdn.x.io"'],
    [{ upstreams: { 'docker.io': { url: 'https://x.io', redirectHosts: [''] } } }, 'invalid configuration: upstreams.docker.io.redirectHosts.0: must NOT have fewer than 1 characters, got ""'],
    [{ upstreams: { 'docker.io': { url: 'https://x.io', extra: 1 } } }, 'invalid configuration: upstreams.docker.io.extra: is not a known key, got {"url":"https://x.io","extra":1}'],
    [{ defaultUpstream: 'gcr.io', upstreams: HUB }, 'defaultUpstream: expected the name of a configured upstream (docker.io), got "gcr.io"'],
    [{ tls: { cert: 'a.pem' }, upstreams: HUB }, 'invalid configuration: tls.key: is required, got {"cert":"a.pem"}'],
    [{ surprise: true, upstreams: HUB }, 'invalid configuration: surprise: is not a known key, got {"surprise":true,"upstreams":{"docker.io":{"url":"https://registry-1.docker.io"}}}'],
    [null, 'invalid configuration: (root): must be object, got null'],
    [{ upstreams: {} }, 'upstreams: expected at least one upstream registry, or "defaultUpstream": null for a registry that only hosts what is pushed to it'],
    [{ hosted: { repositories: ['team-*'] }, upstreams: HUB }, 'hosted.repositories[0]: "team-*": "team-*": "*" and "**" must be whole components ("team/*", "team/**"); wildcards inside a name are not supported'],
    [{ hosted: { repositories: ['team/**', 'docker.io/**'] }, upstreams: HUB }, 'hosted.repositories[1]: "docker.io/**" starts with the upstream docker.io, whose names are proxied; a name is hosted or proxied, never both'],
    [{ hosted: { uploadExpirySeconds: 0 }, upstreams: HUB }, 'invalid configuration: hosted.uploadExpirySeconds: must be >= 1, got 0'],
    [{ auth: { htpasswd: 'h', access: [{ users: ['*'], repositories: ['team/**'], actions: ['push', 'fly'] }] }, upstreams: HUB }, 'invalid configuration: auth.access.0.actions.1: must be one of "pull", "push", "delete", got "fly"'],
    [{ notifications: { endpoints: [{ url: 'ftp://hooks' }] }, upstreams: HUB }, 'invalid configuration: notifications.endpoints.0.url: must match ^https?://, got "ftp://hooks"'],
  ])('%j', (raw, message) => {
    expect(invalid(raw)).toBe(message);
  });

  it('"defaultUpstream": null needs no upstream: every name is hosted (the registry:2 behaviour)', () => {
    const config = parseMirrorConfig({ defaultUpstream: null, upstreams: {} });
    expect(config.defaultUpstream).toBeNull();
    expect(parseMirrorConfig({ defaultUpstream: null, upstreams: HUB }).defaultUpstream).toBeNull();
  });

  it('names a bad upstream key as a registry host name', () => {
    expect(invalid({ upstreams: { 'not a host': { url: 'https://x.io' } } })).toContain('upstreams.not a host: must be a registry host name such as gcr.io or localhost:5000');
  });
});

describe('MIRROR_* environment overrides', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('apply on top of the file, before validation', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mirror-config-'));
    const file = path.join(dir, 'mirror.config.json');
    await writeFile(file, JSON.stringify({ cache: { dir: 'cache' }, upstreams: { ...HUB, 'localhost:5000': { url: 'http://localhost:5000' } } }));
    const config = await loadConfig(file, {
      MIRROR_PORT: '6001',
      MIRROR_HOST: '127.0.0.1',
      MIRROR_LOG_LEVEL: 'warn',
      MIRROR_ACCEL_REDIRECT_PREFIX: '/_blobs/',
      MIRROR_UPSTREAM_DOCKER_IO_USERNAME: 'alice',
      MIRROR_UPSTREAM_DOCKER_IO_PASSWORD: 'secret',
      MIRROR_UPSTREAM_LOCALHOST_5000_USERNAME: 'bob',
      MIRROR_CLUSTER_ADVERTISE_URL: 'http://10.0.0.7:5000',
    });
    expect(config.cluster.advertiseUrl).toBe('http://10.0.0.7:5000');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 6001, sendTimeoutSeconds: 60 });
    expect(config.log.level).toBe('warn');
    expect(config.accel).toEqual({ redirectPrefix: '/_blobs/' });
    expect(config.cache.dir).toBe(path.join(dir, 'cache'));
    expect(config.upstreams['docker.io']).toMatchObject({ username: 'alice', password: 'secret' });
    expect(config.upstreams['localhost:5000']).toMatchObject({ username: 'bob' });
    expect((await loadConfig(file, { MIRROR_CACHE_DIR: 'elsewhere' })).cache.dir).toBe(path.resolve('elsewhere'));
    await expect(loadConfig(file, { MIRROR_PORT: 'http' })).rejects.toThrow('listen.port: must be integer, got "http"');
  });
});
