/**
 * The memory a serving process spends compiling undici's HTTP parser (llhttp, WebAssembly), which
 * `serve` does right after it listens (upstream/warm-http-client.ts). With V8's optimising
 * compiler that took about 37 MB for a moment, in each worker at once: the peak of the memory
 * benchmark's cold phase. Under the serving process's V8 flags (cli/serving-v8-flags.ts) the
 * baseline compiler alone builds it, for about 2.5 MB. Each case runs in a fresh process (a
 * module is compiled once per process), which reads its own peak RSS (VmHWM) around the
 * compilation; the case without the flags shows what the test would catch.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
/** With the serving flags the compilation raised the peak by 2-3 MB here, without them by 35-38 MB. */
const MAX_PEAK_GROWTH_WITH_FLAGS = 12 * MiB;
const MIN_PEAK_GROWTH_WITHOUT_FLAGS = 20 * MiB;

/** How much compiling the parser (one request through undici) raised the peak RSS of a fresh process. */
function peakGrowthOfCompilingTheParser(withServingFlags: boolean): number {
  const script = `
    import { readFileSync } from 'node:fs';
    const peak = () => Number(/^VmHWM:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
    if (${withServingFlags}) (await import('./src/cli/serving-v8-flags.ts')).applyServingV8Flags();
    const { warmHttpClient } = await import('./src/upstream/warm-http-client.ts');
    // Everything but the compilation is loaded and settled: the peak is where start-up left it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = peak();
    if (!(await warmHttpClient())) throw new Error('the request to the throwaway server failed');
    // The optimising tier compiles on background threads, after the first request returned.
    await new Promise((resolve) => setTimeout(resolve, 500));
    console.log(JSON.stringify({ growth: peak() - before }));`;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  return (JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { growth: number }).growth;
}

describe.skipIf(process.platform !== 'linux')('serving V8 flags: compiling the HTTP parser', () => {
  it('raises a serving process\'s peak memory by a few MB, not by the optimising compiler\'s tens', () => {
    expect(peakGrowthOfCompilingTheParser(true)).toBeLessThan(MAX_PEAK_GROWTH_WITH_FLAGS);
  });

  it('without the flags the same compilation costs tens of MB (what the case above guards against)', () => {
    expect(peakGrowthOfCompilingTheParser(false)).toBeGreaterThan(MIN_PEAK_GROWTH_WITHOUT_FLAGS);
  });
});
