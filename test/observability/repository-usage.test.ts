/**
 * The status page's per-repository counts (src/metrics/repository-usage.ts) are bounded: a
 * client walking random names cannot grow them, and the busiest repositories stay. Recording is
 * on every request's path, so a full map sheds its least used quarter at once, one sort for 250
 * new names, instead of a sort of the whole map per new name (the scale bench spent 19% of a
 * worker's CPU there: 2,000 repositories, random tags).
 */
import { describe, expect, it } from 'vitest';
import { MAX_REPOSITORIES, RepositoryUsage } from '../../src/metrics/repository-usage.js';

const pull = { pull: true, hit: true, bytes: 100 };

describe('per-repository usage', () => {
  it('counts pulls, hits and bytes per repository, most pulled first', () => {
    const usage = new RepositoryUsage();
    usage.record('docker.io/library/a', pull);
    usage.record('docker.io/library/b', pull);
    usage.record('docker.io/library/b', { pull: false, hit: false, bytes: 7 });
    usage.record('docker.io/library/b', pull);
    expect(usage.top(5)).toEqual([
      { repository: 'docker.io/library/b', pulls: 2, hits: 2, bytesServed: 207 },
      { repository: 'docker.io/library/a', pulls: 1, hits: 1, bytesServed: 100 },
    ]);
  });

  it('when full, drops the least used quarter in one go and keeps the rest', () => {
    const usage = new RepositoryUsage();
    for (let r = 0; r < MAX_REPOSITORIES; r++) for (let n = 0; n <= r % 7; n++) usage.record(`r${r}`, pull);
    expect(usage.top(Infinity)).toHaveLength(MAX_REPOSITORIES);
    usage.record('newcomer', pull);
    const kept = usage.top(Infinity);
    expect(kept).toHaveLength(MAX_REPOSITORIES * 0.75 + 1);
    // Everything dropped was used at most as much as anything kept (the newcomer aside).
    const keptNames = new Set(kept.map((entry) => entry.repository));
    const pullsOf = (r: number) => (r % 7) + 1;
    const droppedMost = Math.max(...Array.from({ length: MAX_REPOSITORIES }, (_, r) => r).filter((r) => !keptNames.has(`r${r}`)).map(pullsOf));
    const keptLeast = Math.min(...kept.filter((entry) => entry.repository !== 'newcomer').map((entry) => entry.pulls));
    expect(droppedMost).toBeLessThanOrEqual(keptLeast);
  });

  it('keeps the busiest repositories through a walk of 100,000 random names', () => {
    const usage = new RepositoryUsage();
    for (let r = 0; r < 10; r++) for (let n = 0; n < 50 + r; n++) usage.record(`docker.io/busy/${r}`, pull);
    for (let i = 0; i < 100_000; i++) usage.record(`docker.io/random/${i}`, pull);
    expect(usage.top(10).map((entry) => entry.repository)).toEqual(Array.from({ length: 10 }, (_, r) => `docker.io/busy/${9 - r}`));
    expect(usage.top(Infinity).length).toBeLessThanOrEqual(MAX_REPOSITORIES);
  });
});
