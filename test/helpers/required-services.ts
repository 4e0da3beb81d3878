/**
 * Suites that need a service or tool this machine may lack (redis-server, a Ceph S3, the C
 * compiler behind the sendfile addon, skopeo, docker-registry) skip themselves on a fresh
 * machine, so `npm test` passes there. In CI they must run: with MIRROR_TEST_REQUIRE_SERVICES=1
 * in the environment (.ci/run sets it once everything is installed) a missing one fails its
 * test file instead, with the reason, rather than skipping silently.
 *
 *   if (serviceMissing(!redisInstalled, 'redis-server is not installed')) ...skip...
 */
export const SERVICES_REQUIRED = process.env.MIRROR_TEST_REQUIRE_SERVICES === '1';

export class RequiredServiceMissingError extends Error {
  override name = 'RequiredServiceMissingError';
}

/**
 * True when the suite should skip: `missing` and services are not required (the reason is
 * printed). Throws when they are required, failing the file that asked.
 */
export function serviceMissing(missing: boolean, reason: string): boolean {
  if (!missing) return false;
  if (SERVICES_REQUIRED) throw new RequiredServiceMissingError(`${reason}; MIRROR_TEST_REQUIRE_SERVICES=1 says every suite must run here`);
  return true;
}
