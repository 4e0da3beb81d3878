/**
 * The client side of a scenario, run as its own process (`runLoad` in load.ts starts it) so that
 * hashing hundreds of megabytes never shares an event loop with the in-process upstreams (the
 * counting proxies and the CDN live in the benchmark's main process).
 *
 *   node --import tsx test/bench/load-client.ts '<LoadJob as JSON>'   -> one JSON line on stdout
 *
 * Jobs: a pull, one blob GET, a herd of blob GETs, a flood of wrong passwords (scenarios/auth-flood.ts).
 */
import { Agent, request } from 'node:http';
import { assertLoopback, get, getBlob, pull, type BlobResult } from './registry-client.js';
import type { FloodOutcome, HerdOutcome, LoadJob } from './load.js';

async function runHerd(job: Extract<LoadJob, { kind: 'herd' }>): Promise<HerdOutcome> {
  // One connection per client, opened before the herd so the herd itself is only blob GETs.
  const agents = Array.from({ length: job.clients }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
  await Promise.all(agents.map(async (agent) => (await get(`${job.base}/v2/`, agent)).resume()));
  if (job.startAt !== undefined && job.startAt > Date.now()) await new Promise((resolve) => setTimeout(resolve, job.startAt! - Date.now()));
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

/**
 * Wrong passwords as fast as the mirror answers, from `clients` connections, each from its own
 * loopback address (firstAddress, +1, ...), so limits per address do not stop them all at once.
 * Every other request names `job.user`, the rest users that do not exist; Retry-After is ignored.
 */
async function runPasswordFlood(job: Extract<LoadJob, { kind: 'password-flood' }>): Promise<FloodOutcome> {
  const outcome: FloodOutcome = { requests: 0, statuses: {}, errors: 0 };
  const deadline = performance.now() + job.durationMs;
  const [a, b, c, d] = job.firstAddress.split('.').map(Number) as [number, number, number, number];
  const attacker = async (index: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const localAddress = `${a}.${b}.${c}.${d + index}`;
    for (let i = 0; performance.now() < deadline; i++) {
      const user = i % 2 === 0 ? job.user : `nobody-${index}-${i}`;
      const authorization = `Basic ${Buffer.from(`${user}:wrong-${index}-${i}`).toString('base64')}`;
      outcome.requests += 1;
      try {
        const status = await statusOf(`${job.base}/v2/`, agent, localAddress, authorization);
        outcome.statuses[status] = (outcome.statuses[status] ?? 0) + 1;
      } catch {
        outcome.errors += 1;
      }
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: job.clients }, (_, index) => attacker(index)));
  return outcome;
}

function statusOf(url: string, agent: Agent, localAddress: string, authorization: string): Promise<number> {
  assertLoopback(url);
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, localAddress, headers: { authorization } }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
      response.once('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: GET ${url}`)));
    req.once('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as LoadJob;
  if (job.kind === 'pull') {
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    const result = await pull(job.base, job.repo, job.tag, agent, job.parallel, job.headers);
    agent.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (job.kind === 'blob') {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const result = await getBlob(job.base, job.repo, job.digest, job.size, agent, true, job.headers);
    agent.destroy();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (job.kind === 'herd') {
    process.stdout.write(`${JSON.stringify(await runHerd(job))}\n`);
  } else if (job.kind === 'password-flood') {
    process.stdout.write(`${JSON.stringify(await runPasswordFlood(job))}\n`);
  } else {
    throw new Error(`unknown load job ${JSON.stringify(job)}`);
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
