/**
 * How replicas prove to each other that a request on the internal endpoint comes from the fleet
 * (issue 15 item 4: "authenticated between replicas with a shared secret from the environment
 * variable MIRROR_CLUSTER_SECRET, never open to clients").
 *
 * The secret itself never crosses the network: a request carries
 *
 *   X-Mirror-Cluster-Auth: v1 <unix ms> <hex HMAC-SHA256(secret, "<METHOD>\n<path>\n<unix ms>")>
 *
 * which holds for that one path and SIGNATURE_WINDOW_MS around its time (RFC 2104 HMAC), so a
 * header seen on the wire opens nothing else and soon nothing at all. Compared in constant time.
 * Without a configured secret the endpoint is not routed at all (replicas/fleet-routes.ts).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { MirrorError } from '../domain/errors.js';

export const CLUSTER_SECRET_ENV = 'MIRROR_CLUSTER_SECRET';
export const CLUSTER_AUTH_HEADER = 'x-mirror-cluster-auth';
/** Clock difference tolerated between replicas, either way. */
export const SIGNATURE_WINDOW_MS = 60_000;
const MIN_SECRET_LENGTH = 16;

/** A request on the internal endpoint without a valid signature. */
export class ClusterAuthError extends MirrorError {
  readonly code = 'UNAUTHORIZED';
}

/** A secret that cannot protect anything. */
export class ClusterSecretError extends Error {
  override name = 'ClusterSecretError';
}

/** The fleet's secret from the environment; undefined when unset (or empty). */
export function clusterSecretFrom(env: NodeJS.ProcessEnv): string | undefined {
  const secret = env[CLUSTER_SECRET_ENV];
  if (!secret) return undefined;
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new ClusterSecretError(`${CLUSTER_SECRET_ENV}: expected at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32), got ${secret.length}`);
  }
  return secret;
}

export function signClusterRequest(secret: string, method: string, path: string, now = Date.now()): string {
  return `v1 ${now} ${mac(secret, method, path, now)}`;
}

/** Throws ClusterAuthError unless `header` signs this method and path within the window. */
export function verifyClusterRequest(secret: string, header: string | undefined, method: string, path: string, now = Date.now()): void {
  const [version, time, signature, ...rest] = (header ?? '').split(' ');
  const at = Number(time);
  if (version !== 'v1' || rest.length > 0 || !signature || !/^[0-9]{1,15}$/.test(time ?? '')) {
    throw new ClusterAuthError('this endpoint is for the replicas of this mirror only');
  }
  if (Math.abs(now - at) > SIGNATURE_WINDOW_MS) throw new ClusterAuthError('the cluster signature has expired (or the replicas\' clocks disagree)');
  const expected = Buffer.from(mac(secret, method, path, at), 'hex');
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new ClusterAuthError('this endpoint is for the replicas of this mirror only');
}

function mac(secret: string, method: string, path: string, at: number): string {
  return createHmac('sha256', secret).update(`${method.toUpperCase()}\n${path}\n${at}`).digest('hex');
}
