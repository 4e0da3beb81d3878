/**
 * A misconfiguration must not look like a missing image (issue 12 item 10): with upstream
 * credentials and a token realm on a host that is not in tokenRealms, an anonymous pull says
 * what to change (the realm host and `tokenRealms`) instead of 404 NAME_UNKNOWN, and the first
 * such failure per upstream is logged as a warning.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startObserved, type ObservedMirror } from '../observability/observed-mirror.js';

let setup: ObservedMirror | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

describe('a token realm missing from tokenRealms', () => {
  it('answers anonymous pulls with an error naming the realm host and tokenRealms, and warns once', async () => {
    setup = await startObserved({
      logLevel: 'info',
      fake: { users: { alice: 'upstream-pw' } },
      upstream: { username: 'alice', password: 'upstream-pw', tokenRealms: [] },
    });
    pushImage(setup.fake, 'library/alpine', 'latest', makeImage({ layers: [100], seed: 'realm' }));
    const realmHost = new URL(setup.fake.tokenUrl).host;
    for (let i = 0; i < 3; i++) {
      const response = await get(`${setup.url}/v2/library/alpine/manifests/latest`);
      expect([401, 502]).toContain(response.status);
      const error = JSON.parse(response.body.toString()).errors[0];
      expect(error.code).not.toBe('NAME_UNKNOWN');
      expect(error.message).toContain(realmHost);
      expect(error.message).toContain('upstreams["docker.io"].tokenRealms');
    }
    const warnings = setup.logLines().map((line) => JSON.parse(line) as { level: number; msg: string; upstream?: string; err?: { message?: string } })
      .filter((line) => line.level === 40 && line.upstream === 'docker.io');
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toContain(realmHost);
    expect(JSON.stringify(warnings[0])).not.toContain('upstream-pw');
    expect(setup.fake.count({ server: 'token' })).toBe(0);
  });
});
