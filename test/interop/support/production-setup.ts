/**
 * What a production mirror needs on disk, made in the test's temporary directory: a private CA
 * and a server certificate for 127.0.0.1 (openssl), and an htpasswd file with a bcrypt entry in
 * the `$2y$` form `htpasswd -B` writes (bcryptjs, so no apache2-utils is needed).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A directory holding only `ca.crt`: skopeo's `--cert-dir`, the shape of a certs.d entry. */
  caDir: string;
}

export function makeTlsFiles(dir: string): TlsFiles {
  mkdirSync(dir, { recursive: true });
  const file = (name: string) => join(dir, name);
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', '/CN=interop mirror CA', '-keyout', file('ca.key'), '-out', file('ca.crt')]);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=127.0.0.1', '-keyout', file('tls.key'), '-out', file('tls.csr')]);
  // Go clients (skopeo, dockerd, containerd) ignore the CN: the IP must be a subjectAltName.
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-sha256', '-days', '2', '-in', file('tls.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-extfile', file('san.ext'), '-out', file('tls.crt')]);
  const caDir = file('ca-dir');
  mkdirSync(caDir, { recursive: true });
  copyFileSync(file('ca.crt'), join(caDir, 'ca.crt'));
  return { caFile: file('ca.crt'), certFile: file('tls.crt'), keyFile: file('tls.key'), caDir };
}

export function writeHtpasswd(file: string, user: string, password: string): string {
  const hash = bcrypt.hashSync(password, 5).replace(/^\$2b\$/, '$2y$');
  writeFileSync(file, `${user}:${hash}\n`);
  return file;
}

export const basicAuthorization = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
