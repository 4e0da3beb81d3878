/**
 * What the primary of `serve --workers N` adds to its workers' environment, beside the secret of
 * their internal endpoint (serve-primary.ts).
 *
 * glibc's malloc returns memory freed at the top of its heap to the system once more than 128 KiB
 * is free (M_TRIM_THRESHOLD), and grows the heap a page at a time. A worker streaming a miss
 * allocates a socket buffer per 64 KiB read and frees it soon after, so the heap shrank and grew
 * all the time and every buffer's pages were faulted in again: a fifth of a cold blob's CPU went
 * to page faults on these virtual machines (perf: exc_page_fault under the socket read's copy).
 * Keeping up to 256 MiB freed and growing by 64 MiB made a cold 120 MiB blob 20-30% faster with
 * 20% less CPU (docs/benchmarks.md, "Where a miss spends its CPU"). The memory is reused by the
 * next buffers, so a worker's RSS stays at its peak instead of shrinking between bursts.
 *
 * Read by glibc when the process starts, so it can only be given to processes started after the
 * decision: the workers. An operator's own GLIBC_TUNABLES is left as it is (and is what a
 * single-process `serve --workers 1` runs with; the Dockerfile sets the same value).
 */
export const WORKER_MALLOC_TUNABLES = 'glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864';

export function workerEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env.GLIBC_TUNABLES === undefined ? { GLIBC_TUNABLES: WORKER_MALLOC_TUNABLES } : {};
}
