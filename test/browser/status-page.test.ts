/**
 * The status page at `/`, rendered by a real (headless) Chromium against a running mirror: it
 * must show cache use against the budget, a download in flight with its progress, and hits and
 * the pulled repository after a pull, refreshing by itself. Leaves a screenshot in
 * docs/status-page.png for the README.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.js';
import { get, waitFor } from '../helpers/http.js';
import { type MirrorUnderTest, startMirror } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';

/** The page's DOM, as far as the functions run inside the page use it (tsconfig has no DOM lib). */
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOT = new URL('../../docs/status-page.png', import.meta.url);

describe('status page', () => {
  let browser: Browser;
  let fake: FakeRegistry;
  let mirror: MirrorUnderTest;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    fake = await startFakeRegistry({ rateLimitHeaders: { limit: 100, remaining: 87, windowSeconds: 21600, source: '203.0.113.7' } });
    mirror = await startMirror({ upstreams: { 'docker.io': { url: fake.url } }, cache: { maxBytes: 64 * 2 ** 20 } });
  });

  afterAll(async () => {
    await browser?.close();
    await mirror?.close();
    await fake?.close();
  });

  it('shows cache use, a download in flight, then hits and the pulled repository', async () => {
    const image = makeImage({ layers: [1024 * 1024, 20_000], seed: 'status-page' });
    pushImage(fake, 'library/nginx', '1.27', image);
    const [big, small] = image.layers as [typeof image.layers[0], typeof image.layers[0]];
    const blobUrl = (digest: string) => `${mirror.url}/v2/library/nginx/blobs/${digest}`;

    expect((await get(`${mirror.url}/v2/library/nginx/manifests/1.27`)).status).toBe(200);
    // One slow download, so that the page has something in flight to show.
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 256 * 1024, times: 1 });
    const slowPull = get(blobUrl(big.digest), {}, { bodyTimeoutMs: 30_000 });

    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    const response = await page.goto(`${mirror.url}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    await page.waitForFunction(() => document.querySelector('#downloads')?.textContent?.includes('sha256:'), undefined, { timeout: 15_000 });
    expect(await page.textContent('#downloads')).toMatch(/ \/ 1\.0 MiB \(/);

    expect((await slowPull).body.equals(big.bytes)).toBe(true);
    for (const blob of [image.config, small]) expect((await get(blobUrl(blob.digest))).status).toBe(200);
    // A client has every byte once the commit checked them; the download itself ends after the
    // fsync. A request before that joins it (a miss): the warm requests come after.
    await waitFor(async () => JSON.parse((await get(`${mirror.url}/api/status`)).body.toString()).downloads.inFlight.length === 0, 5_000, 'the downloads to end');
    for (const blob of [image.config, big, small]) expect((await get(blobUrl(blob.digest))).status).toBe(200); // warm
    expect((await get(`${mirror.url}/v2/library/nginx/manifests/1.27`)).status).toBe(200);

    // The page refreshes itself; no reload here.
    await page.waitForFunction(() => Number(document.querySelector('#hits')?.textContent) >= 4, undefined, { timeout: 15_000 });
    await page.waitForFunction(() => document.querySelector('#downloads')?.textContent === 'none', undefined, { timeout: 15_000 });
    const cacheBytes = image.config.size + big.size + small.size;
    expect(await page.textContent('#cache-used')).toContain(`${(cacheBytes / 2 ** 20).toFixed(1)} MiB of 64.0 MiB`);
    expect(await page.textContent('#cache-blobs')).toBe('3');
    expect(await page.textContent('#top-repositories')).toContain('docker.io/library/nginx');
    expect(await page.textContent('#rate-limits')).toContain('87');
    expect(await page.textContent('#hit-ratio')).toMatch(/%$/);
    expect(await page.textContent('#error')).toBe('');

    await mkdir(new URL('.', SCREENSHOT), { recursive: true });
    await page.setViewportSize({ width: 1200, height: 420 });
    await page.screenshot({ path: SCREENSHOT.pathname });
    await page.close();
  });
});
