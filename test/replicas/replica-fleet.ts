/**
 * A fleet of real mirror processes for the replica tests: `node dist/main.js serve` children
 * (as users run the mirror) sharing one Redis (test/helpers/redis-server.ts) and one bucket on
 * the tests' Ceph RADOS Gateway (test/helpers/ceph-s3.ts), each with its own empty cache
 * directory, its own port and `cluster.advertiseUrl`, and the fleet's MIRROR_CLUSTER_SECRET.
 * The upstream is the fake registry (test/helpers/fake-registry.ts), which counts requests.
 *
 * Each replica's output goes to `<dir>/replica-<n>.log`; `stop` is SIGTERM, `kill` SIGKILL, both
 * by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ensureMirrorBuilt, NODE_FLAGS, REPO_ROOT } from '../interop/support/mirror.js';
import { freeLoopbackPort } from '../interop/support/processes.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { S3Target } from '../helpers/ceph-s3.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import type { S3ForSuite } from '../helpers/s3-suite.js';

const MAIN = path.join(REPO_ROOT, 'dist', 'main.js');
const LISTEN_DEADLINE_MS = 30_000;

export interface FleetOptions {
  fake: FakeRegistry;
  redisUrl: string;
  s3: S3Target;
  /** Key prefix in the bucket, one per test. */
  prefix: string;
  redirect?: boolean;
  ttlSeconds?: number;
  /** `serve --workers` for each replica; default 1 (a replica is one process here). */
  workers?: number;
  /** Top-level config keys to merge over the defaults. */
  overrides?: Record<string, unknown>;
}

export interface Replica {
  readonly index: number;
  readonly url: string;
  readonly child: ChildProcess;
  readonly cacheDir: string;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit. */
  stop(): Promise<void>;
  /** SIGKILL: nothing runs in the replica afterwards (no lease release, no cleanup). */
  kill(): Promise<void>;
  log(): string;
}

export class ReplicaFleet {
  readonly secret = randomBytes(24).toString('hex');
  readonly replicas: Replica[] = [];
  #dir: Promise<string> | undefined;

  constructor(readonly options: FleetOptions) {}

  dir(): Promise<string> {
    this.#dir ??= mkdtemp(path.join(tmpdir(), 'replica-fleet-'));
    return this.#dir;
  }

  /** Starts `count` more replicas, in parallel; `env` is added to their environment. */
  async start(count: number, env: Record<string, string> = {}): Promise<Replica[]> {
    ensureMirrorBuilt();
    const started = await Promise.all(Array.from({ length: count }, (_, offset) => this.#startOne(this.replicas.length + offset, env)));
    this.replicas.push(...started);
    return started;
  }

  async close(): Promise<void> {
    await Promise.all(this.replicas.splice(0).map((replica) => replica.kill()));
    // MIRROR_KEEP_FLEET=1 keeps the replicas' logs and caches for a look after a failure.
    const dir = await this.#dir;
    if (dir && process.env.MIRROR_KEEP_FLEET) console.warn(`replica fleet kept in ${dir}`);
    else if (dir) await rm(dir, { recursive: true, force: true });
  }

  async #startOne(index: number, extraEnv: Record<string, string>): Promise<Replica> {
    const dir = await this.dir();
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    const cacheDir = path.join(dir, `cache-${index}-${randomBytes(3).toString('hex')}`);
    mkdirSync(cacheDir, { recursive: true });
    const configFile = path.join(cacheDir, '..', `replica-${index}.json`);
    writeFileSync(configFile, JSON.stringify(this.#config(port, cacheDir), null, 2));
    const logFile = path.join(dir, `replica-${index}.log`);
    const env = {
      ...process.env,
      AWS_ACCESS_KEY_ID: this.options.s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.options.s3.secretAccessKey,
      MIRROR_CLUSTER_SECRET: this.secret,
      MIRROR_CLUSTER_ADVERTISE_URL: url,
      ...extraEnv,
    };
    const args = [...NODE_FLAGS, MAIN, 'serve', '--config', configFile, '--workers', String(this.options.workers ?? 1)];
    const child = spawn(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stderr!.pipe(log);
    await listening(child, log, exited, logFile);
    const signal = async (name: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(name);
      await exited;
    };
    return { index, url, child, cacheDir, logFile, exited, stop: () => signal('SIGTERM'), kill: () => signal('SIGKILL'), log: () => readFileSync(logFile, 'utf8') };
  }

  #config(port: number, cacheDir: string): Record<string, unknown> {
    const { fake, redisUrl, s3, prefix } = this.options;
    return {
      listen: { host: '127.0.0.1', port },
      cache: { dir: cacheDir, maxBytes: '2GiB' },
      tags: { ttlSeconds: this.options.ttlSeconds ?? 300 },
      metadata: { store: 'redis', redisUrl },
      storage: { driver: 's3', s3: { endpoint: s3.endpoint, bucket: s3.bucket, region: s3.region, forcePathStyle: true, prefix, redirect: this.options.redirect ?? false } },
      log: { level: 'info' },
      upstreams: { 'docker.io': { url: fake.url } },
      ...this.options.overrides,
    };
  }
}

export interface FleetSuite {
  /** The file's Redis (started before its first test). */
  redis(): RedisServer;
  /**
   * A fake upstream and a fleet on it, on a fresh key prefix of the suite's bucket (or the
   * `s3` given), both closed after the test. The fleet's replicas are started by the caller.
   */
  open(options?: Partial<Omit<FleetOptions, 'fake' | 'redisUrl'>>): Promise<{ fake: FakeRegistry; fleet: ReplicaFleet }>;
}

/** For a replica test file: one Redis for the file, one upstream and fleet per test. */
export function useFleets(s3: S3ForSuite): FleetSuite {
  let redis: RedisServer | undefined;
  let opened: { fake: FakeRegistry; fleet: ReplicaFleet } | undefined;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterEach(async (context) => {
    // A failed test shows what its replicas logged: a cut connection alone says nothing of why.
    if (context.task.result?.state === 'fail') for (const replica of opened?.fleet.replicas ?? []) process.stderr.write(logExcerpt(replica));
    await opened?.fleet.close();
    await opened?.fake.close();
    opened = undefined;
  });
  afterAll(() => redis?.stop());
  return {
    redis: () => redis!,
    async open(options = {}) {
      const fake = await startFakeRegistry();
      const fleet = new ReplicaFleet({ s3: s3.target(), prefix: s3.prefix(), ...options, fake, redisUrl: redis!.url });
      opened = { fake, fleet };
      return opened;
    },
  };
}

/** A replica's warnings and errors, then its last lines. */
function logExcerpt(replica: Replica): string {
  const lines = replica.log().trim().split('\n');
  const problems = lines.filter((line) => /"level":(40|50|60)/.test(line) || !line.startsWith('{')).slice(-30);
  return `--- ${replica.url} (${replica.logFile}): warnings and errors ---\n${problems.join('\n')}\n--- its last lines ---\n${lines.slice(-15).join('\n')}\n`;
}

/** Resolves once the replica logs its `listening` line (copying its stdout to the log). */
function listening(child: ChildProcess, log: NodeJS.WritableStream, exited: Promise<number | null>, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica did not listen within ${LISTEN_DEADLINE_MS} ms: see ${logFile}`)), LISTEN_DEADLINE_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited (${code}) before listening:\n${readFileSync(logFile, 'utf8').slice(-2000)}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.write(`${line}\n`);
      if (line.includes('"msg":"listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
