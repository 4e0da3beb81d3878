/**
 * Three-replica fleets for the `replicas` scenario, all on 127.0.0.1 sharing one bucket on the
 * bench's Ceph RADOS Gateway and one Redis, each replica pulling through the bench hub:
 *
 *   mirror     `node dist/main.js serve --workers 1` x3, storage.driver s3, metadata.store redis,
 *              MIRROR_CLUSTER_SECRET and each one's cluster.advertiseUrl (the interop launcher);
 *   reference  distribution 2.8 (`docker-registry`) x3 in proxy mode, `storage: s3` on the same
 *              bucket (its own root directory), `redis` as its blob descriptor cache. Its S3
 *              driver panics when AWS_CA_BUNDLE is set (LoadCustomCABundleError) even for a plain
 *              http endpoint, so it runs without that variable.
 *
 * Every fleet gets fresh key prefixes, so each measurement starts cold.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { S3Target } from '../helpers/ceph-s3.js';
import { startMirror, type RunningMirror } from '../interop/support/mirror.js';
import { ProcessGroup, freeLoopbackPort, waitForHttp } from '../interop/support/processes.js';
import { HUB_PASSWORD, HUB_USER } from '../interop/support/token-server.js';
import type { BenchUpstreams } from './bench-upstreams.js';

export interface Fleet {
  readonly name: 'mirror' | 'reference';
  readonly urls: string[];
  stop(): Promise<void>;
}

export interface FleetBackends {
  s3: S3Target;
  redisUrl: string;
}

const REPLICAS = 3;

export async function startMirrorFleet(dir: string, env: BenchUpstreams, backends: FleetBackends): Promise<Fleet> {
  const prefix = `bench-${randomBytes(4).toString('hex')}/`;
  const secret = randomBytes(24).toString('hex');
  const started: RunningMirror[] = [];
  try {
    for (let index = 0; index < REPLICAS; index++) {
      const port = await freeLoopbackPort();
      const overrides = {
        listen: { host: '127.0.0.1', port },
        log: { level: 'warn' },
        metadata: { store: 'redis', redisUrl: backends.redisUrl },
        storage: { driver: 's3', s3: { endpoint: backends.s3.endpoint, bucket: backends.s3.bucket, region: backends.s3.region, forcePathStyle: true, prefix } },
        upstreams: {
          'docker.io': { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD, tokenRealms: [`127.0.0.1:${env.upstreams.token.port}`], redirectHosts: [new URL(env.cdnTap.url).host] },
        },
      };
      const processEnv = {
        AWS_ACCESS_KEY_ID: backends.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: backends.s3.secretAccessKey,
        MIRROR_CLUSTER_SECRET: secret,
        MIRROR_CLUSTER_ADVERTISE_URL: `http://127.0.0.1:${port}`,
      };
      started.push(await startMirror(join(dir, `replica-${index}`), env.upstreams, overrides, { args: ['--workers', '1'], env: processEnv }));
    }
  } catch (error) {
    await Promise.all(started.map((mirror) => mirror.stop()));
    throw error;
  }
  return { name: 'mirror', urls: started.map((mirror) => mirror.url), stop: async () => void (await Promise.all(started.map((mirror) => mirror.stop()))) };
}

export async function startReferenceFleet(dir: string, env: BenchUpstreams, backends: FleetBackends): Promise<Fleet> {
  const processes = new ProcessGroup();
  const rootdirectory = `/reference-${randomBytes(4).toString('hex')}`;
  const { AWS_CA_BUNDLE: _bundle, ...processEnv } = process.env;
  const urls: string[] = [];
  try {
    for (let index = 0; index < REPLICAS; index++) {
      const replicaDir = join(dir, `reference-${index}`);
      mkdirSync(replicaDir, { recursive: true });
      const port = await freeLoopbackPort();
      const configFile = join(replicaDir, 'config.yml');
      writeFileSync(configFile, referenceConfig(port, env, backends, rootdirectory));
      const started = processes.start(`reference-${index}`, 'docker-registry', ['serve', configFile], join(replicaDir, 'registry.log'), processEnv);
      const url = `http://127.0.0.1:${port}`;
      await waitForHttp(`${url}/v2/`, started);
      urls.push(url);
    }
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
  return { name: 'reference', urls, stop: () => processes.stopAll() };
}

/** distribution 2.8's proxy mode on S3, as its documentation describes it; JSON is valid YAML. */
function referenceConfig(port: number, env: BenchUpstreams, { s3, redisUrl }: FleetBackends, rootdirectory: string): string {
  return JSON.stringify({
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      s3: { accesskey: s3.accessKeyId, secretkey: s3.secretAccessKey, region: s3.region, regionendpoint: s3.endpoint, bucket: s3.bucket, rootdirectory, secure: false, v4auth: true },
      cache: { blobdescriptor: 'redis' },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    redis: { addr: new URL(redisUrl).host },
    http: { addr: `127.0.0.1:${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
    proxy: { remoteurl: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD },
  }, null, 2);
}
