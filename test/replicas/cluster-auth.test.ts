/**
 * The signature replicas put on internal requests (replicas/cluster-auth.ts): it holds for one
 * method and path within a minute either way, under the fleet's secret only; the secret itself is
 * never in it; a short secret is refused with a message naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { ClusterAuthError, ClusterSecretError, clusterSecretFrom, signClusterRequest, verifyClusterRequest } from '../../src/replicas/cluster-auth.js';

const SECRET = 'a-fleet-secret-of-some-length';
const PATH = `/_mirror/fleet/blobs/sha256:${'e'.repeat(64)}`;
const NOW = 1_800_000_000_000;

describe('cluster request signatures', () => {
  it('accept the signed method and path within the window, and carry no secret', () => {
    const header = signClusterRequest(SECRET, 'GET', PATH, NOW);
    expect(header).toMatch(/^v1 1800000000000 [0-9a-f]{64}$/);
    expect(header).not.toContain(SECRET);
    expect(() => verifyClusterRequest(SECRET, header, 'GET', PATH, NOW)).not.toThrow();
    expect(() => verifyClusterRequest(SECRET, header, 'GET', PATH, NOW + 59_000)).not.toThrow();
    expect(() => verifyClusterRequest(SECRET, header, 'GET', PATH, NOW - 59_000)).not.toThrow();
  });

  it('refuse anything else with UNAUTHORIZED', () => {
    const header = signClusterRequest(SECRET, 'GET', PATH, NOW);
    const attempts: Array<[string | undefined, string, string, number, string]> = [
      [undefined, 'GET', PATH, NOW, SECRET],
      ['', 'GET', PATH, NOW, SECRET],
      ['Bearer token', 'GET', PATH, NOW, SECRET],
      [header, 'GET', `${PATH}x`, NOW, SECRET],
      [header, 'DELETE', PATH, NOW, SECRET],
      [header, 'GET', PATH, NOW + 61_000, SECRET],
      [header, 'GET', PATH, NOW, `${SECRET}-other`],
      [`${header} extra`, 'GET', PATH, NOW, SECRET],
      [header.replace(/.$/, (last) => (last === '0' ? '1' : '0')), 'GET', PATH, NOW, SECRET],
      [header.slice(0, -2), 'GET', PATH, NOW, SECRET],
    ];
    for (const [value, method, path, now, secret] of attempts) {
      expect(() => verifyClusterRequest(secret, value, method, path, now), String(value)).toThrow(ClusterAuthError);
    }
    expect(new ClusterAuthError('x').code).toBe('UNAUTHORIZED');
  });

  it('read MIRROR_CLUSTER_SECRET: unset or empty is none; a short one is a configuration error', () => {
    expect(clusterSecretFrom({})).toBeUndefined();
    expect(clusterSecretFrom({ MIRROR_CLUSTER_SECRET: '' })).toBeUndefined();
    expect(clusterSecretFrom({ MIRROR_CLUSTER_SECRET: SECRET })).toBe(SECRET);
    expect(() => clusterSecretFrom({ MIRROR_CLUSTER_SECRET: 'short' })).toThrow(ClusterSecretError);
    expect(() => clusterSecretFrom({ MIRROR_CLUSTER_SECRET: 'short' })).toThrow(/^MIRROR_CLUSTER_SECRET: expected at least 16 characters/);
  });
});
