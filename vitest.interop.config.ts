import { defineConfig } from 'vitest/config';

/**
 * Interop suite: real registries (docker-registry), real clients (skopeo, containerd, dockerd)
 * and the built mirror as a child process. Files run one after another: each starts its own upstreams and mirror,
 * and on 2 cores parallel files would only fight over CPU.
 */
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    hookTimeout: 120_000,
    testTimeout: 180_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
