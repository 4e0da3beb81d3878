/** Shared set-up for the security tests: htpasswd files and self-signed certificates in a temp dir, a mirror with upstream credentials. */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterEach } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { startMirror, type MirrorUnderTest, type RawConfig } from '../helpers/mirror-under-test.js';

export interface TempDir {
  dir: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function tempDir(prefix: string): Promise<TempDir> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, file: (name) => path.join(dir, name), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** An htpasswd file as `htpasswd -B` writes it ($2y$ prefix); cost 4 keeps the tests fast. */
export async function writeHtpasswd(file: string, users: Record<string, string>): Promise<void> {
  const lines = Object.entries(users).map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$')}`);
  await writeFile(file, `# made by the test\n${lines.join('\n')}\n`);
}

/** A self-signed P-256 certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
export async function selfSignedCertificate(dir: TempDir): Promise<{ certFile: string; keyFile: string; cert: Buffer }> {
  const certFile = dir.file('cert.pem');
  const keyFile = dir.file('key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=registry-mirror-test',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe', timeout: 20_000 });
  return { certFile, keyFile, cert: await readFile(certFile) };
}

/**
 * An upstream with bearer tokens whose `testuser/` repositories are private, and a mirror that
 * holds alice's credentials for it and has no client auth, so the access policy decides what
 * anonymous clients get. Both are closed after each test; `raw` adds to the mirror's config.
 */
export function useCredentialedMirror(): (raw?: Omit<RawConfig, 'upstreams'>) => Promise<{ upstream: FakeRegistry; mirror: MirrorUnderTest }> {
  let upstream: FakeRegistry | undefined;
  let mirror: MirrorUnderTest | undefined;
  afterEach(async () => {
    await mirror?.close();
    await upstream?.close();
    mirror = undefined;
    upstream = undefined;
  });
  return async (raw = {}) => {
    upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
    mirror = await startMirror({ ...raw, upstreams: { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } } });
    return { upstream, mirror };
  };
}
