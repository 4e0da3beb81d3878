/**
 * The deployment files under deploy/ and the Dockerfile, checked without a cluster or a Docker
 * engine: every YAML file parses; the Kubernetes objects fit together (names, ports, probe paths,
 * mounts) and carry the mirror config, which must pass the mirror's own validation; compose and
 * systemd keep their promises; the Dockerfile keeps its invariants (checked as text, since no
 * image can be built here) and its HEALTHCHECK command works.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { NODE_FLAGS } from '../interop/support/mirror.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEPLOY = path.join(ROOT, 'deploy');

type Doc = Record<string, any>;

function filesUnder(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && pattern.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

function documents(file: string): Doc[] {
  const parsed = parseAllDocuments(readFileSync(file, 'utf8'));
  const docs = Array.isArray(parsed) ? parsed : [parsed];
  for (const doc of docs) expect(doc.errors, `${file}: ${doc.errors.map((e) => e.message).join('; ')}`).toEqual([]);
  return docs.map((doc) => doc.toJS() as Doc).filter((doc) => doc !== null);
}

function kubernetesObjects(): Doc[] {
  return filesUnder(path.join(DEPLOY, 'kubernetes'), /\.ya?ml$/).flatMap(documents);
}

function only(objects: Doc[], kind: string): Doc {
  const matching = objects.filter((object) => object.kind === kind);
  expect(matching, kind).toHaveLength(1);
  return matching[0]!;
}

describe('deploy/**/*.yaml', () => {
  it('every YAML file parses without errors', () => {
    const files = filesUnder(DEPLOY, /\.ya?ml$/);
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) expect(documents(file).length, file).toBeGreaterThan(0);
  });
});

describe('deploy/kubernetes', () => {
  const objects = kubernetesObjects().filter((object) => object.kind !== 'Kustomization');
  const configMap = only(objects, 'ConfigMap');
  const deployment = only(objects, 'Deployment');
  const service = only(objects, 'Service');
  const claim = only(objects, 'PersistentVolumeClaim');
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];
  const config = parseMirrorConfig(JSON.parse(configMap.data['mirror.config.json']));

  it('has a Deployment, Service, PersistentVolumeClaim and ConfigMap, each with apiVersion and name', () => {
    expect(objects.map((object) => object.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'Service']);
    for (const object of objects) {
      expect(object.apiVersion, object.kind).toMatch(/^(v1|apps\/v1)$/);
      expect(object.metadata?.name, object.kind).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('lists every manifest in the kustomization', () => {
    const kustomization = parseYaml(readFileSync(path.join(DEPLOY, 'kubernetes', 'kustomization.yaml'), 'utf8')) as Doc;
    const manifests = filesUnder(path.join(DEPLOY, 'kubernetes'), /\.ya?ml$/).map((file) => path.basename(file)).filter((name) => name !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(manifests);
  });

  it('carries a config the mirror accepts, listening on all interfaces with the cache on the volume', () => {
    expect(config.listen.host).toBe('0.0.0.0');
    const dataMount = container.volumeMounts.find((mount: Doc) => mount.mountPath === config.cache.dir);
    expect(dataMount, `a volume mounted at cache.dir ${config.cache.dir}`).toBeDefined();
    const volume = pod.volumes.find((entry: Doc) => entry.name === dataMount.name);
    expect(volume.persistentVolumeClaim.claimName).toBe(claim.metadata.name);
    expect(config.cache.maxBytes).toBeLessThan(parseQuantity(claim.spec.resources.requests.storage));
  });

  it('mounts the ConfigMap where MIRROR_CONFIG points', () => {
    const env = Object.fromEntries(container.env.map((entry: Doc) => [entry.name, entry.value]));
    const configMount = container.volumeMounts.find((mount: Doc) => env.MIRROR_CONFIG.startsWith(`${mount.mountPath}/`));
    const volume = pod.volumes.find((entry: Doc) => entry.name === configMount.name);
    expect(volume.configMap.name).toBe(configMap.metadata.name);
    expect(path.basename(env.MIRROR_CONFIG)).toBe('mirror.config.json');
    expect(env.MIRROR_CACHE_DIR ?? config.cache.dir).toBe(config.cache.dir);
  });

  it('probes /healthz (liveness) and /readyz (readiness) on the port the config listens on', () => {
    const port = container.ports.find((entry: Doc) => entry.containerPort === config.listen.port);
    expect(port, `containerPort ${config.listen.port}`).toBeDefined();
    const resolves = (probePort: number | string) => probePort === port.containerPort || probePort === port.name;
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(resolves(container.livenessProbe.httpGet.port)).toBe(true);
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(resolves(container.readinessProbe.httpGet.port)).toBe(true);
  });

  it('routes the Service to that port, selecting the pods', () => {
    const port = container.ports.find((entry: Doc) => entry.containerPort === config.listen.port);
    expect([port.name, port.containerPort]).toContain(service.spec.ports[0].targetPort);
    for (const [key, value] of Object.entries(service.spec.selector)) expect(deployment.spec.template.metadata.labels[key]).toBe(value);
    expect(deployment.spec.selector.matchLabels).toEqual(service.spec.selector);
  });

  it('runs as non-root without privileges, and lets SIGTERM finish', () => {
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(container.securityContext.capabilities.drop).toContain('ALL');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(20);
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parseYaml(readFileSync(path.join(DEPLOY, 'compose.yaml'), 'utf8')) as Doc;

  it('runs the mirror on port 5000 with /data on a volume, Redis only under the "redis" profile', () => {
    const mirror = compose.services.mirror;
    expect(mirror.ports).toContain('5000:5000');
    expect(mirror.volumes.some((volume: string) => volume.endsWith(':/data'))).toBe(true);
    expect(mirror.profiles).toBeUndefined();
    expect(compose.services.redis.profiles).toEqual(['redis']);
  });

  it('ships configs the mirror accepts, the Redis one pointing at the redis service', () => {
    const configs = filesUnder(path.join(DEPLOY, 'compose'), /\.json$/);
    expect(configs.map((file) => path.basename(file))).toEqual(['mirror.config.json', 'mirror.config.redis.json']);
    for (const file of configs) {
      const config = parseMirrorConfig(JSON.parse(readFileSync(file, 'utf8')));
      expect(config.cache.dir, file).toBe('/data');
      expect(config.listen.port, file).toBe(5000);
    }
    const redis = parseMirrorConfig(JSON.parse(readFileSync(path.join(DEPLOY, 'compose', 'mirror.config.redis.json'), 'utf8')));
    expect(redis.metadata).toEqual({ store: 'redis', redisUrl: 'redis://redis:6379', maxVerdicts: 100_000 });
  });
});

describe('deploy/kubernetes-replicas (issue 15: N replicas, Redis, an S3 endpoint)', () => {
  const objects = filesUnder(path.join(DEPLOY, 'kubernetes-replicas'), /\.ya?ml$/).flatMap(documents).filter((object) => object.kind !== 'Kustomization');
  const named = (kind: string, name: string) => objects.find((object) => object.kind === kind && object.metadata.name === name)!;
  const mirror = named('Deployment', 'registry-mirror-replicas');
  const pod = mirror.spec.template.spec;
  const container = pod.containers[0];
  const env = new Map<string, Doc>(container.env.map((entry: Doc) => [entry.name, entry]));
  const configMap = named('ConfigMap', 'registry-mirror-replicas-config');
  const config = parseMirrorConfig(JSON.parse(configMap.data['mirror.config.json']));

  it('lists every file in the kustomization', () => {
    const kustomization = parseYaml(readFileSync(path.join(DEPLOY, 'kubernetes-replicas', 'kustomization.yaml'), 'utf8')) as Doc;
    const files = readdirSync(path.join(DEPLOY, 'kubernetes-replicas')).filter((name) => name !== 'kustomization.yaml').sort();
    expect([...kustomization.resources].sort()).toEqual(files);
  });

  it('runs several replicas as a plain Deployment, with the local tier on an emptyDir larger than cache.maxBytes', () => {
    expect(objects.some((object) => object.kind === 'StatefulSet')).toBe(false);
    expect(mirror.spec.replicas).toBeGreaterThanOrEqual(2);
    const mount = container.volumeMounts.find((entry: Doc) => entry.mountPath === config.cache.dir);
    const volume = pod.volumes.find((entry: Doc) => entry.name === mount.name);
    expect(volume.emptyDir).toBeDefined();
    expect(config.cache.maxBytes).toBeLessThan(parseQuantity(volume.emptyDir.sizeLimit));
    expect(container.args.slice(0, 2)).toEqual(['serve', '--workers']);
    expect(Number(container.args[2])).toBeLessThanOrEqual(Number(container.resources.requests.cpu));
  });

  it('shares one Redis and one bucket, both reachable by the names of Services in the set', () => {
    expect(config.metadata.store).toBe('redis');
    expect(config.storage.driver).toBe('s3');
    const redis = new URL(config.metadata.redisUrl!);
    expect(named('Service', redis.hostname).spec.ports[0].port).toBe(Number(redis.port));
    const s3 = new URL(config.storage.s3!.endpoint!);
    expect(named('Service', s3.hostname).spec.ports[0].port).toBe(Number(s3.port));
    const bucketJob = objects.find((object) => object.kind === 'Job')!;
    expect(bucketJob.spec.template.spec.containers[0].command.join(' ')).toContain(`local/${config.storage.s3!.bucket}`);
  });

  it('gives each replica its pod IP as cluster.advertiseUrl and the cluster secret from a Secret; S3 credentials from a Secret too', () => {
    expect(env.get('POD_IP')?.valueFrom.fieldRef.fieldPath).toBe('status.podIP');
    expect(env.get('MIRROR_CLUSTER_ADVERTISE_URL')?.value).toBe(`http://$(POD_IP):${config.listen.port}`);
    expect(env.get('MIRROR_CLUSTER_SECRET')?.valueFrom.secretKeyRef).toMatchObject({ name: 'registry-mirror-cluster', key: 'secret' });
    expect(env.get('MIRROR_CLUSTER_SECRET')?.valueFrom.secretKeyRef.optional).toBeUndefined();
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) expect(env.get(name)?.valueFrom.secretKeyRef.name).toBe('registry-mirror-s3');
    expect(JSON.stringify(configMap)).not.toMatch(/secret|password/i);
  });

  it('probes /readyz for readiness and /healthz for liveness; the Service selects the replicas', () => {
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.ports[0].containerPort).toBe(config.listen.port);
    const service = named('Service', 'registry-mirror-replicas');
    expect(service.spec.selector).toEqual(mirror.spec.selector.matchLabels);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
  });
});

describe('deploy/replicas/compose.yaml', () => {
  const compose = parseYaml(readFileSync(path.join(DEPLOY, 'replicas', 'compose.yaml'), 'utf8')) as Doc;
  const mirror = compose.services.mirror;
  const config = parseMirrorConfig(JSON.parse(readFileSync(path.join(DEPLOY, 'replicas', 'mirror.config.json'), 'utf8')));

  it('runs several replicas of the mirror behind nginx, with Redis and an S3 endpoint', () => {
    expect(mirror.deploy.replicas).toBeGreaterThanOrEqual(2);
    expect(Object.keys(compose.services).sort()).toEqual(['lb', 'minio', 'minio-bucket', 'mirror', 'redis']);
    expect(compose.services.lb.ports).toEqual(['5000:8080']);
    const nginx = readFileSync(path.join(DEPLOY, 'replicas', 'nginx.conf'), 'utf8');
    expect(nginx).toContain(`server mirror:${config.listen.port};`);
    expect(config.metadata).toEqual({ store: 'redis', maxVerdicts: 100000, redisUrl: 'redis://redis:6379' });
    expect(new URL(config.storage.s3!.endpoint!).hostname).toBe('minio');
    expect(compose.services['minio-bucket'].entrypoint.join(' ')).toContain(`local/${config.storage.s3!.bucket}`);
  });

  it('requires MIRROR_CLUSTER_SECRET and gives each replica its own address, with the V8 flags of every entry point', () => {
    expect(mirror.environment.MIRROR_CLUSTER_SECRET).toMatch(/^\$\{MIRROR_CLUSTER_SECRET:\?/);
    const script = mirror.entrypoint[2] as string;
    expect(script).toContain(`MIRROR_CLUSTER_ADVERTISE_URL="http://$$(hostname -i | cut -d ' ' -f 1):${config.listen.port}"`);
    const command = script.slice(script.indexOf('exec ') + 5).split(' ');
    expect(command.slice(1, command.findIndex((token) => token.endsWith('dist/main.js')))).toEqual(NODE_FLAGS);
    expect(mirror.command.slice(0, 2)).toEqual(['serve', '--workers']);
  });
});

describe('nginx in front (deploy/nginx, deploy/kubernetes-nginx, Compose profile "nginx")', () => {
  const conf = readFileSync(path.join(DEPLOY, 'nginx', 'registry-mirror.conf'), 'utf8');
  const prefix = /location (\/\S+\/) \{\s*internal;/.exec(conf)?.[1];

  it('has an internal location, the prefix nginx announces to the mirror, which the mirror accepts', () => {
    expect(prefix).toBeDefined();
    expect(conf).toContain(`proxy_set_header X-Registry-Mirror-Accel-Prefix ${prefix};`);
    expect(conf).toMatch(/alias \/data\/blobs\/;/);
    const config = parseMirrorConfig({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' } }, accel: { redirectPrefix: prefix } });
    expect(config.accel?.redirectPrefix).toBe(prefix);
  });

  const overlay = filesUnder(path.join(DEPLOY, 'kubernetes-nginx'), /\.ya?ml$/).flatMap(documents);
  const find = (kind: string) => overlay.find((object) => object.kind === kind)!;

  it('the Kubernetes overlay ships the nginx config verbatim and lists every file', () => {
    expect(find('ConfigMap').data['registry-mirror.conf']).toBe(conf);
    const files = readdirSync(path.join(DEPLOY, 'kubernetes-nginx')).filter((name) => name !== 'kustomization.yaml').sort();
    const kustomization = find('Kustomization');
    expect([...kustomization.resources.filter((entry: string) => !entry.startsWith('..')), ...kustomization.patches.map((patch: Doc) => patch.path)].sort()).toEqual(files);
    expect(kustomization.resources).toContain('../kubernetes');
  });

  it('the sidecar mounts the cache read-only at cache.dir and the mirror gets the same prefix', () => {
    const containers = find('Deployment').spec.template.spec.containers;
    const mirror = containers.find((container: Doc) => container.name === 'registry-mirror');
    const nginx = containers.find((container: Doc) => container.name === 'nginx');
    expect(mirror.env).toContainEqual({ name: 'MIRROR_ACCEL_REDIRECT_PREFIX', value: prefix });
    expect(nginx.volumeMounts).toContainEqual({ name: 'cache', mountPath: '/data', readOnly: true });
    expect(nginx.ports[0].containerPort).toBe(Number(/listen (\d+);/.exec(conf)?.[1]));
    expect(find('Service').spec.ports[0].targetPort).toBe(nginx.ports[0].name);
  });

  it('Compose runs nginx only under the "nginx" profile, in the mirror\'s network namespace, the volume read-only', () => {
    const compose = parseYaml(readFileSync(path.join(DEPLOY, 'compose.yaml'), 'utf8')) as Doc;
    const nginx = compose.services.nginx;
    expect(nginx.profiles).toEqual(['nginx']);
    expect(nginx.network_mode).toBe('service:mirror');
    expect(nginx.volumes).toContain('mirror-data:/data:ro');
    expect(nginx.volumes).toContain('./nginx/registry-mirror.conf:/etc/nginx/conf.d/default.conf:ro');
    expect(compose.services.mirror.environment.MIRROR_ACCEL_REDIRECT_PREFIX).toBe('${MIRROR_ACCEL_REDIRECT_PREFIX:-}');
  });
});

describe('deploy/systemd/registry-mirror.service', () => {
  const unit = readFileSync(path.join(DEPLOY, 'systemd', 'registry-mirror.service'), 'utf8');
  const settings = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match) settings.set(match[1]!, [...(settings.get(match[1]!) ?? []), match[2]!]);
  }
  const value = (key: string) => settings.get(key)?.at(-1);

  it('has the three sections and starts `serve`', () => {
    for (const section of ['[Unit]', '[Service]', '[Install]']) expect(unit).toContain(section);
    expect(value('ExecStart')).toMatch(/^\/usr\/bin\/node( --\S+)* \S+\/dist\/main\.js serve$/);
    expect(value('WantedBy')).toBe('multi-user.target');
  });

  it('runs unprivileged and hardened, with the cache in its state directory', () => {
    expect(value('DynamicUser') === 'yes' || (value('User') ?? 'root') !== 'root').toBe(true);
    for (const [key, expected] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes', CapabilityBoundingSet: '' })) {
      expect(value(key), key).toBe(expected);
    }
    expect(settings.get('Environment')).toContain(`MIRROR_CACHE_DIR=/var/lib/${value('StateDirectory')}`);
    expect(Number(value('TimeoutStopSec'))).toBeGreaterThanOrEqual(20);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const named = (name: string) => instructions.filter((line) => line.toUpperCase().startsWith(`${name} `));
  const lastStage = instructions.slice(instructions.map((line) => /^FROM /i.test(line)).lastIndexOf(true));

  it('is multi-stage on the current Node LTS (node:26)', () => {
    const froms = named('FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) expect(from).toMatch(/^FROM node:26[-.\w]*( AS \w+)?$/i);
    expect(lastStage.some((line) => /^COPY --from=/i.test(line))).toBe(true);
    expect(lastStage.join('\n')).toMatch(/npm ci --omit=dev/);
  });

  it('builds the native addons (sendfile, malloc tuning) in a stage that has a C compiler, and fails the build without them', () => {
    const build = instructions.slice(0, instructions.map((line) => /^FROM /i.test(line)).lastIndexOf(true));
    expect(build[0]).toMatch(/^FROM node:26 AS build$/i);
    const run = build.filter((line) => /^RUN /i.test(line)).join('\n');
    expect(run).toContain('node src/native/build-native.mjs');
    expect(run).toContain('test -f dist/native/sendfile.node');
    expect(run).toContain('test -f dist/native/malloc-tuning.node');
    expect(lastStage).toContain('COPY --from=build /app/dist ./dist');
  });

  it('runs as a non-root USER in the final stage, exposes 5000 and keeps /data in a volume', () => {
    const users = lastStage.filter((line) => /^USER /i.test(line));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER (root|0)(:|$)/i);
    expect(named('EXPOSE').join(' ')).toMatch(/\b5000\b/);
    expect(named('VOLUME').join(' ')).toMatch(/["\s[]\/data["\]\s]|\/data$/);
    expect(dockerfile).toMatch(/MIRROR_CACHE_DIR=\/data/);
  });

  it('has a HEALTHCHECK on /healthz whose command works', async () => {
    const healthcheck = named('HEALTHCHECK');
    expect(healthcheck).toHaveLength(1);
    const command = JSON.parse(healthcheck[0]!.slice(healthcheck[0]!.indexOf('CMD ') + 4)) as string[];
    expect(command[0]).toBe('node');
    expect(command.join(' ')).toContain('/healthz');
    const server = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await run(command, { MIRROR_HEALTHCHECK_URL: `http://127.0.0.1:${port}/healthz` })).toBe(0);
      expect(await run(command, { MIRROR_HEALTHCHECK_URL: `http://127.0.0.1:${port}/nothing` })).toBe(1);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('keeps build context small (.dockerignore excludes node_modules, dist and .git)', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    for (const entry of ['node_modules', 'dist', '.git']) expect(ignored).toContain(entry);
  });
});

function run(command: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, command.slice(1), { env: { ...process.env, ...env }, timeout: 15_000 }, () => resolve(child.exitCode ?? -1));
  });
}

/** Kubernetes quantities such as 50Gi or 100G, in bytes. */
function parseQuantity(text: string): number {
  const match = /^(\d+)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(text);
  if (!match) throw new Error(`not a quantity: ${text}`);
  const units: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(match[1]) * units[match[2] ?? '']!;
}
