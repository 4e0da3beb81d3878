/**
 * A real S3 server for tests and benchmarks: a single-node Ceph RADOS Gateway built from Debian's
 * packages (ceph-mon, ceph-osd, radosgw, ceph-common). One monitor, one OSD on memstore (data in
 * RAM), one radosgw; cephx off; every daemon on 127.0.0.1 with ports this launcher picked free;
 * all state in one temp dir. An access key is created with `radosgw-admin user create` and a
 * bucket through the S3 API itself. About 15 s from nothing to an answering gateway.
 *
 *   const s3 = await startCephS3();            // { endpoint, bucket, accessKeyId, ... }
 *   ... point an S3 client at s3.endpoint ...
 *   await s3.stop();                           // every daemon, by PID
 *
 * Vitest: test/helpers/ceph-s3-global-setup.ts. Shell and CI: scripts/ceph-s3.ts start|stop.
 * An S3 that is already running is reused through MIRROR_TEST_S3_* (s3TargetFromEnv).
 * Needs no /work/shared: the layout follows Ceph's docs for a manual single-host deployment.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { signal, s3Answers, stopPids, waitUntil } from './daemon-process.js';
import { cephConf } from './ceph-conf.js';
import { pickFreePortBlock } from './free-port-block.js';

const run = promisify(execFile);

/** Where an S3 bucket is and how to sign for it: all a test needs. */
export interface S3Target {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface CephS3 extends S3Target {
  /** Temp dir with ceph.conf, daemon data and logs (`log/`). */
  readonly dir: string;
  readonly cephConf: string;
  readonly pids: { mon: number; osd: number; rgw: number };
  /** Stops every daemon (SIGTERM, then SIGKILL) and removes the dir unless `keepDir`. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

export interface StartCephS3Options {
  /** Parent of the temp state dir; default os.tmpdir(). */
  parentDir?: string;
  bucket?: string;
  /** Capacity of the memstore OSD; default 4 GiB (memory is used only for what is stored). */
  memstoreBytes?: number;
  /** Whole-cluster start attempts; default 3. */
  attempts?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Leave the daemons running when this process exits (scripts/ceph-s3.ts start). */
  detach?: boolean;
}

export const CEPH_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'monmaptool'] as const;
export const S3_ENV = {
  endpoint: 'MIRROR_TEST_S3_ENDPOINT',
  accessKeyId: 'MIRROR_TEST_S3_ACCESS_KEY',
  secretAccessKey: 'MIRROR_TEST_S3_SECRET_KEY',
  bucket: 'MIRROR_TEST_S3_BUCKET',
  region: 'MIRROR_TEST_S3_REGION',
  /** Optional: lets suites start a second gateway on the same cluster (outage tests). */
  cephConf: 'MIRROR_TEST_S3_CEPH_CONF',
} as const;

/** The Ceph programs missing from PATH (empty when Ceph can be started here). */
export function missingCephBinaries(): string[] {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return CEPH_BINARIES.filter((name) => !dirs.some((dir) => isExecutable(join(dir, name))));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The S3 named by MIRROR_TEST_S3_* (CI starts one for every suite), if all four are set. */
export function s3TargetFromEnv(env: NodeJS.ProcessEnv = process.env): S3Target | undefined {
  const endpoint = env[S3_ENV.endpoint];
  const accessKeyId = env[S3_ENV.accessKeyId];
  const secretAccessKey = env[S3_ENV.secretAccessKey];
  const bucket = env[S3_ENV.bucket];
  if (!endpoint || !accessKeyId || !secretAccessKey || !bucket) return undefined;
  return { endpoint, accessKeyId, secretAccessKey, bucket, region: env[S3_ENV.region] || 'us-east-1' };
}

/** `MIRROR_TEST_S3_*=...` lines for a target, as a shell would export them. */
export function s3TargetEnv(target: S3Target & { cephConf?: string }): Record<string, string> {
  const env: Record<string, string> = {
    [S3_ENV.endpoint]: target.endpoint,
    [S3_ENV.accessKeyId]: target.accessKeyId,
    [S3_ENV.secretAccessKey]: target.secretAccessKey,
    [S3_ENV.bucket]: target.bucket,
    [S3_ENV.region]: target.region,
  };
  if (target.cephConf) env[S3_ENV.cephConf] = target.cephConf;
  return env;
}

export async function startCephS3(options: StartCephS3Options = {}): Promise<CephS3> {
  const missing = missingCephBinaries();
  if (missing.length > 0) throw new Error(`Ceph is not installed (missing ${missing.join(', ')}): apt-get install ceph-mon ceph-osd radosgw ceph-common`);
  const attempts = options.attempts ?? 3;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const dir = mkdtempSync(join(options.parentDir ?? tmpdir(), 'ceph-s3-'));
    const cluster = new CephCluster(dir, options);
    try {
      return await cluster.start();
    } catch (error) {
      lastError = error;
      // A half-started cluster is not worth repairing (now and then an OSD registers before the
      // monitor has settled and the gateway never answers): start again from nothing.
      options.log?.(`ceph-s3: attempt ${attempt} failed: ${(error as Error).message} (logs in ${dir}/log)`);
      await cluster.stop({ keepDir: attempt === attempts });
    }
  }
  throw new Error(`Ceph S3 did not start after ${attempts} attempts: ${(lastError as Error).message}`);
}

/** Stops daemons recorded in `<dir>/pids.json` by an earlier (detached) start. */
export async function stopCephS3Dir(dir: string, options: { keepDir?: boolean } = {}): Promise<void> {
  await stopDaemons(JSON.parse(readFileSync(join(dir, 'pids.json'), 'utf8')) as Record<string, number>);
  if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
}

class CephCluster {
  private readonly children: ChildProcess[] = [];
  private readonly pids: Record<string, number> = {};
  private readonly conf: string;
  private readonly exitHook = (): void => this.killNow();

  constructor(private readonly dir: string, private readonly options: StartCephS3Options) {
    this.conf = join(dir, 'ceph.conf');
  }

  async start(): Promise<CephS3> {
    const ports = await pickFreePortBlock(12);
    const [monPort, rgwPort] = ports;
    for (const sub of ['mon', 'osd', 'run', 'log']) mkdirSync(join(this.dir, sub));
    writeFileSync(this.conf, cephConf({ dir: this.dir, fsid: randomUUID(), monPort: monPort!, osdPorts: [ports[2]!, ports[11]!], memstoreBytes: this.options.memstoreBytes ?? 4 * 2 ** 30 }));
    if (!this.options.detach) process.once('exit', this.exitHook);
    this.options.log?.(`ceph-s3: monitor on 127.0.0.1:${monPort}, gateway on 127.0.0.1:${rgwPort}, state in ${this.dir}`);
    await this.startMonitor(monPort!);
    await this.startOsd();
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    this.daemon('rgw', 'radosgw', ['-c', this.conf, '-n', 'client.rgw.a', '-f', '--rgw-frontends', `beast endpoint=127.0.0.1:${rgwPort}`]);
    await waitUntil(() => s3Answers(endpoint), 45_000, `radosgw did not answer on ${endpoint}`);
    const target = await this.createUserAndBucket(endpoint);
    writeFileSync(join(this.dir, 'pids.json'), JSON.stringify(this.pids));
    this.options.log?.(`ceph-s3: ready, ${endpoint} bucket ${target.bucket}`);
    return { ...target, dir: this.dir, cephConf: this.conf, pids: { mon: this.pids.mon!, osd: this.pids.osd!, rgw: this.pids.rgw! }, stop: (o) => this.stop(o) };
  }

  private async startMonitor(port: number): Promise<void> {
    const monmap = join(this.dir, 'monmap');
    await run('monmaptool', ['--create', '--addv', 'a', `[v1:127.0.0.1:${port}]`, '--fsid', readFsid(this.conf), monmap]);
    await run('ceph-mon', ['-c', this.conf, '--mkfs', '-i', 'a', '--monmap', monmap]);
    this.daemon('mon', 'ceph-mon', ['-c', this.conf, '-i', 'a', '-f']);
    await waitUntil(() => this.ceph(['mon', 'stat']).then(() => true, () => false), 30_000, 'ceph-mon did not answer');
  }

  private async startOsd(): Promise<void> {
    const uuid = randomUUID();
    const id = (await this.ceph(['osd', 'new', uuid])).trim();
    if (!/^\d+$/.test(id)) throw new Error(`ceph osd new answered ${JSON.stringify(id)}`);
    await run('ceph-osd', ['-c', this.conf, '-i', id, '--mkfs', '--osd-uuid', uuid], { timeout: 60_000 });
    // Now and then the OSD sends its first command before its monitor client has the monitor
    // map ("handle_command on fsid 00000000-..." in the monitor's log, "wrong fsid" in the
    // OSD's) and never comes up; starting the OSD process again is enough.
    for (let start = 1; ; start++) {
      const outFile = join(this.dir, 'log', 'osd.out');
      const logged = existsSync(outFile) ? statSync(outFile).size : 0;
      this.daemon('osd', 'ceph-osd', ['-c', this.conf, '-i', id, '-f']);
      const stuck = () => readFileSync(outFile).subarray(logged).includes('wrong fsid');
      const up = () => this.ceph(['osd', 'stat']).then((out) => /1 up/.test(out), () => false);
      try {
        await waitUntil(async () => stuck() || (await up()), 20_000, 'ceph-osd did not come up');
        if (!stuck()) return;
      } catch (error) {
        if (start === 4) throw error;
      }
      if (start === 4) throw new Error('ceph-osd did not come up ("wrong fsid" at each of 4 starts)');
      this.options.log?.(`ceph-s3: ceph-osd start ${start} did not come up; starting it again`);
      await stopPids([this.pids.osd!]);
    }
  }

  private async createUserAndBucket(endpoint: string): Promise<S3Target> {
    const accessKeyId = `mirror-${randomBytes(6).toString('hex')}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await run('radosgw-admin', ['-c', this.conf, '-n', 'client.admin', 'user', 'create', '--uid=mirror-test', '--display-name=mirror-test', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], { timeout: 60_000 });
    const target: S3Target = { endpoint, region: 'us-east-1', bucket: this.options.bucket ?? 'registry-mirror-test', accessKeyId, secretAccessKey };
    const client = new S3Client({ endpoint, region: target.region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } });
    try {
      // The user may need a moment to be visible to the gateway's cache: retry briefly.
      await waitUntil(() => client.send(new CreateBucketCommand({ Bucket: target.bucket })).then(() => true, () => false), 20_000, `could not create bucket ${target.bucket}`);
    } finally {
      client.destroy();
    }
    return target;
  }

  private ceph(args: string[]): Promise<string> {
    return run('ceph', ['-c', this.conf, '--connect-timeout', '5', ...args], { timeout: 10_000 }).then((r) => r.stdout);
  }

  private daemon(name: string, command: string, args: string[]): void {
    const out = openSync(join(this.dir, 'log', `${name}.out`), 'a');
    const child = spawn(command, args, { stdio: ['ignore', out, out], detached: true });
    child.unref();
    this.children.push(child);
    this.pids[name] = child.pid!;
  }

  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    process.removeListener('exit', this.exitHook);
    await stopDaemons(this.pids);
    if (!options.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private killNow(): void {
    for (const pid of Object.values(this.pids)) signal(pid, 'SIGKILL');
  }
}

export interface Gateway {
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/**
 * One more radosgw on the same cluster (same users, same buckets), on its own free port: a
 * gateway a test may stop without taking S3 away from the other suites.
 */
export async function startExtraGateway(cephConfPath: string, logDir: string): Promise<Gateway> {
  const [port] = await pickFreePortBlock(1);
  const name = `client.rgw.extra-${randomBytes(4).toString('hex')}`;
  const out = openSync(join(logDir, `${name}.out`), 'a');
  const child = spawn('radosgw', ['-c', cephConfPath, '-n', name, '-f', '--rgw-frontends', `beast endpoint=127.0.0.1:${port}`, '--rgw-data', logDir], { stdio: ['ignore', out, out], detached: true });
  child.unref();
  const pid = child.pid!;
  const kill = (): void => void signal(pid, 'SIGKILL');
  process.once('exit', kill);
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    process.removeListener('exit', kill);
    await stopPids([pid]);
  };
  try {
    await waitUntil(() => s3Answers(endpoint), 30_000, `extra radosgw did not answer on ${endpoint}`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, pid, stop };
}

function readFsid(conf: string): string {
  return /^fsid = (\S+)$/m.exec(readFileSync(conf, 'utf8'))![1]!;
}

/** The gateway and the OSD first, then the monitor: an OSD going down waits for the monitor's ack. */
async function stopDaemons(pids: Record<string, number>): Promise<void> {
  await stopPids([pids.rgw, pids.osd].filter((pid): pid is number => pid !== undefined));
  if (pids.mon !== undefined) await stopPids([pids.mon]);
}
