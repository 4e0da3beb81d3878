/**
 * The bench's memory readings (process-tree.ts): PSS counts a page shared by several processes
 * once in all, where summed VmRSS counts it once per process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { processTree, pssBytes, statusBytes, treePss, treeRss } from './process-tree.js';

describe.runIf(process.platform === 'linux')('process tree memory', () => {
  it("a process's PSS is above zero and below its RSS; a gone process reads 0", () => {
    const pss = pssBytes(process.pid);
    expect(pss).toBeGreaterThan(0);
    expect(pss).toBeLessThanOrEqual(statusBytes(process.pid, 'VmRSS'));
    expect(pssBytes(2 ** 22 + 1)).toBe(0);
  });

  it("two node processes share node's code: their summed PSS is well below their summed RSS", async () => {
    const child = spawn(process.execPath, ['-e', 'process.stdout.write("up"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await once(child.stdout, 'data');
      const childPid = child.pid!;
      expect(processTree(process.pid)).toContain(childPid);
      const pair = [process.pid, childPid];
      const rss = pair.reduce((sum, pid) => sum + statusBytes(pid, 'VmRSS'), 0);
      const pss = pair.reduce((sum, pid) => sum + pssBytes(pid), 0);
      // The child's code pages are the parent's too: each process is charged half of them.
      expect(pss).toBeLessThan(rss - 10 * 1024 * 1024);
      expect(treePss(childPid)).toBe(pssBytes(childPid));
      expect(treeRss(childPid).now).toBe(statusBytes(childPid, 'VmRSS'));
    } finally {
      child.kill();
    }
  });
});
