/**
 * The client side of a scenario, run as its own process (`runLoad` in load.ts starts it) so that
 * hashing hundreds of megabytes never shares an event loop with the in-process upstreams (the
 * counting proxies and the CDN live in the benchmark's main process).
 *
 *   node --import tsx test/bench/load-client.ts '<LoadJob as JSON>'   -> one JSON line on stdout
 */
import { Agent } from 'node:http';
import { get, getBlob, pull, type BlobResult } from './registry-client.js';
import type { HerdOutcome, LoadJob } from './load.js';

async function runHerd(job: Extract<LoadJob, { kind: 'herd' }>): Promise<HerdOutcome> {
  // One connection per client, opened before the herd so the herd itself is only blob GETs.
  const agents = Array.from({ length: job.clients }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  await Promise.all(agents.map(async (agent) => (await get(`${job.base}/v2/`, agent)).resume()));
  const started = performance.now();
  const results = await Promise.all(
    agents.map((agent) =>
      getBlob(job.base, job.repo, job.digest, job.size, agent, job.verify).then(
        (result): BlobResult | { error: string } => result,
        (error: Error) => ({ error: error.message.slice(0, 200) }),
      ),
    ),
  );
  const wallMs = performance.now() - started;
  agents.forEach((agent) => agent.destroy());
  const ok = results.filter((result): result is BlobResult => !('error' in result));
  const failures = results.filter((result): result is { error: string } => 'error' in result).map((result) => result.error);
  return { wallMs, clientMs: ok.map((result) => result.ms), ttfbMs: ok.map((result) => result.ttfbMs), failures };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as LoadJob;
  if (job.kind === 'pull') {
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const result = await pull(job.base, job.repo, job.tag, agent, job.parallel);
    agent.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (job.kind === 'herd') {
    process.stdout.write(`${JSON.stringify(await runHerd(job))}\n`);
  } else {
    throw new Error(`unknown load job ${JSON.stringify(job)}`);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
