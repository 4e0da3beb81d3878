import { defineConfig } from 'vitest/config';

/**
 * Browser suite: the status page in headless Chromium (Debian's `chromium` package at
 * /usr/bin/chromium, driven by playwright-core). Kept out of the unit run, which must not need a
 * browser; run with `npm run test:browser`.
 */
export default defineConfig({
  test: {
    include: ['test/browser/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
