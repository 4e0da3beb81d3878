import v8 from 'node:v8';

/**
 * V8 flags of a serving process, set by the process itself before it serves or compiles anything:
 * V8 reads them at every collection and every compilation, so this works whichever way node was
 * started (a flag on the command line would be one more thing every launcher must repeat).
 *
 * `--heap-growing-percent=50`: how far V8 lets the heap grow past what survived the last full
 * collection before it collects again. Left to itself it picks a factor of about 2 and more, so a
 * serving process whose live heap is a steady 20 MB swung between 60 and 80 MB of RSS: garbage
 * waiting for a collection. At 1.5 the scale benchmark's workers (200,000 tags, 16 connections,
 * a re-tag beside them) peaked 10-15 MB lower each at the same request rate.
 *
 * `--no-concurrent-array-buffer-sweeping`: every body chunk Node reads (a request body from the
 * HTTP parser, a socket read for undici) is an ArrayBuffer of up to 64 KiB outside the heap. V8
 * counts such bytes allocated since the last mark-compact against the old generation's limit, and
 * by default frees the dead ones on a background task, so the count falls late and a 1 GiB push
 * ran about 40 mark-compacts (a 13 MB heap, a limit of 25 MB). Freed at the collection itself,
 * the same push runs 15-20, with about 15% less CPU (docs/benchmarks.md, "Where a push's CPU
 * goes"; test/hosted/push-memory-churn.test.ts counts them).
 *
 * `--always-sparkplug`: a function gets V8's baseline machine code (Sparkplug, a non-optimising
 * compiler in production in Chrome) on its first call instead of after many interpreted ones.
 * A miss runs code paths a fresh process has called a few times at most (a many-layer image's
 * first pull after a restart: upstream requests, the fill, the commit, the index), and ran them
 * in the interpreter: with the flag the cold pull of a 20-layer image took 7-23% less time in six
 * pairs of fresh processes out of six, and 20-33% less CPU in five of them (docs/benchmarks.md,
 * "a cold process"), for a few MB of code.
 *
 * `--liftoff-only`: WebAssembly is compiled by V8's baseline compiler (Liftoff) only, never
 * optimised by TurboFan. The one WebAssembly module a serving process runs is undici's HTTP
 * parser (llhttp), which `serve` compiles right after it listens (upstream/warm-http-client.ts).
 * With TurboFan that compilation took about 37 MB of memory for a moment and kept 9-12 MB of it:
 * the two workers of a two-core `serve` compiling at once, in the first second after a restart,
 * were the peak of the memory benchmark's cold phase (179-205 MB of summed PSS for 0.3-0.5 s,
 * against 125-145 MB while 50 clients then streamed a 1 GiB miss; docs/benchmarks.md, "the
 * parser's compilation"). Liftoff alone adds about 2.5 MB. That parser only reads the answers to
 * token requests, manifests and HEADs (blob bodies have a parser of their own,
 * upstream/blob-socket-client.ts), whose few hundred bytes of head it parses a little slower.
 */
const SERVING_V8_FLAGS = ['--heap-growing-percent=50', '--no-concurrent-array-buffer-sweeping', '--always-sparkplug', '--liftoff-only'];

export function applyServingV8Flags(): void {
  for (const flag of SERVING_V8_FLAGS) v8.setFlagsFromString(flag);
}
