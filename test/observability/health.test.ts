import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.js';
import { startObserved, type ObservedMirror } from './observed-mirror.js';

describe('/healthz and /readyz', () => {
  let setup: ObservedMirror | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });

  it('answers 200 on both normally, and 503 on /readyz (only) once shutting down', async () => {
    setup = await startObserved();
    expect((await get(`${setup.url}/healthz`)).status).toBe(200);
    const ready = await get(`${setup.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body.toString())).toEqual({ ready: true, degraded: false, checks: { configLoaded: true, cacheWritable: true, metadataReachable: true, shuttingDown: false } });

    setup.mirror.markShuttingDown();
    const draining = await get(`${setup.url}/readyz`);
    expect(draining.status).toBe(503);
    expect(JSON.parse(draining.body.toString()).checks.shuttingDown).toBe(true);
    expect((await get(`${setup.url}/healthz`)).status).toBe(200);
  });

  it('answers 503 on /readyz when the cache directory is gone', async () => {
    setup = await startObserved();
    await rm(setup.cacheDir, { recursive: true, force: true });
    const response = await get(`${setup.url}/readyz`);
    expect(response.status).toBe(503);
    expect(JSON.parse(response.body.toString()).checks.cacheWritable).toBe(false);
  });

  it('answers 503 on /readyz when the metadata store does not answer, naming the backend (issue 13 item 5)', async () => {
    setup = await startObserved({ config: { metadata: { store: 'sqlite' } } });
    expect((await get(`${setup.url}/readyz`)).status).toBe(200);
    await setup.mirror.metadata.close();
    const response = await get(`${setup.url}/readyz`);
    expect(response.status).toBe(503);
    const report = JSON.parse(response.body.toString());
    expect(report.checks).toMatchObject({ metadataReachable: false, cacheWritable: true });
    expect(report.failures).toEqual([expect.stringMatching(/^metadata store "sqlite" does not answer: .*not open/)]);
  });
});
