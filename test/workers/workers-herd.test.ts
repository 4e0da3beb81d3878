/**
 * Issue 15 item 9 and the last done-when: `serve --workers 2` on one machine, without Redis (the
 * default SQLite metadata and filesystem storage): a herd of 50 clients on a cold blob makes one
 * upstream GET; both workers serve clients; the worker that lost the race streams the owner's
 * download in progress (its clients are "joined", the owner's log shows the internal GET) rather
 * than waiting for it to end; a worker killed with SIGKILL is replaced and its lease ends at once.
 * Real processes: `node dist/main.js serve --workers 2`.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { deliveredExactly, timedGet, upstreamBlobGets } from '../replicas/fleet-support.js';
import type { FakeRegistry } from '../helpers/fake-registry.js';
import { useServedWorkers, type Served } from './serve-workers.js';

const MiB = 2 ** 20;
const REPO = 'library/workers';

describe('serve --workers 2', () => {
  const serve = useServedWorkers();

  async function start(layers: number[], seed: string) {
    const image = makeImage({ layers, seed });
    const { fake, served, cacheDir } = await serve({ cache: { maxBytes: '1GiB' } });
    pushImage(fake, REPO, 'latest', image);
    return { fake, served, cacheDir, layer: image.layers[0]! };
  }

  it('a 50-client herd on a cold blob: 1 upstream GET, right bytes, both workers serve, the second streams the first one\'s download', { timeout: 120_000 }, async () => {
    const { fake, served, layer } = await start([8 * MiB], 'workers-herd');
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 4 * MiB });
    const responses = await Promise.all(Array.from({ length: 50 }, () => timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`)));
    for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(1);

    // Each worker compiled undici's parser at start, not on this first miss (src/upstream/warm-http-client.ts).
    expect(new Set(served.lines.filter((line) => line.msg === 'compiled the HTTP parser').map((line) => line.worker)).size).toBe(2);
    const requestLines = () => served.lines.filter((line) => line.msg === 'request' && String(line.path).endsWith(layer.digest));
    // Each worker writes its request line after the response ends: on a busy machine, a moment after the client has its bytes.
    await waitFor(() => requestLines().filter((line) => String(line.path).startsWith('/v2/')).length >= 50, 20_000, 'the 50 request log lines');
    const requests = requestLines();
    const byWorker = new Map<unknown, Array<Record<string, unknown>>>();
    for (const line of requests) byWorker.set(line.worker, [...(byWorker.get(line.worker) ?? []), line]);
    const clientRequests = requests.filter((line) => String(line.path).startsWith('/v2/'));
    expect(clientRequests).toHaveLength(50);
    expect(new Set(clientRequests.map((line) => line.worker)).size).toBe(2);
    const owner = clientRequests.find((line) => line.cache === 'upstream')!.worker;
    const other = clientRequests.filter((line) => line.worker !== owner);
    expect(other.length).toBeGreaterThan(0);
    for (const line of other) expect(line.cache).toBe('joined');
    const internal = requests.filter((line) => String(line.path).startsWith('/_mirror/fleet/blobs/'));
    expect(internal.map((line) => [line.worker, line.status])).toEqual([[owner, 200]]);
  });

  it('a herd on a cold small blob: the worker that lost the race serves it from the shared disk once the owner is done, writing no copy of its own', { timeout: 120_000 }, async () => {
    const { fake, served, layer } = await start([512 * 1024], 'workers-small-herd');
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 256 * 1024 });
    const other = await herdOnOneBlob(fake, served, layer);
    // "joined" would be a client following a second fill of the blob on this worker; "cache" is
    // the owner's file, served once its download was verified and published.
    for (const line of other) expect(line.cache).toBe('cache');
  });

  it('a herd on a cold large blob: the worker that lost the race follows the owner\'s file on the disk they share, never writing a second one', { timeout: 120_000 }, async () => {
    const { fake, served, cacheDir, layer } = await start([6 * MiB], 'workers-one-file');
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 3 * MiB });
    let mostFillFiles = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        mostFillFiles = Math.max(mostFillFiles, await fillFiles(cacheDir));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const other = await herdOnOneBlob(fake, served, layer);
    watching = false;
    await watch;
    // They follow the download as it lands (not the finished file)...
    for (const line of other) expect(line.cache).toBe('joined');
    // ...and it lands in one file: the owner's. A copy would be a second fill file beside it.
    expect(mostFillFiles).toBe(1);
  });

  it('a corrupt upstream under a herd on both workers: no client gets a clean end of wrong bytes', { timeout: 120_000 }, async () => {
    const { fake, served, layer } = await start([6 * MiB], 'workers-corrupt');
    fake.setFault('blob', { mode: 'corrupt', times: 1 });
    const responses = await Promise.all(Array.from({ length: 20 }, () => timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`)));
    let cut = 0;
    for (const response of responses) {
      if (deliveredExactly(response, layer.bytes)) continue;
      cut += 1;
      // Cut short or refused: never every announced byte with a clean end.
      expect(response.error !== undefined || response.status >= 500 || response.body.length < layer.size).toBe(true);
    }
    expect(cut).toBeGreaterThan(0);
  });

  it('the worker downloading a blob killed with SIGKILL: its client is cut, another worker takes over at once, a new worker is started', { timeout: 120_000 }, async () => {
    const { fake, served, layer } = await start([4 * MiB], 'workers-kill');
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: MiB });
    const first = timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`);
    await waitFor(() => upstreamBlobGets(fake, layer.digest).length > 0, 30_000, 'the upstream GET');
    const workers = await workerPids(served);
    expect(workers).toHaveLength(2);
    // Both workers hold a connection to the upstream (each learned its challenge at start): the
    // owner is the one whose connection sent the blob GET.
    const download = upstreamBlobGets(fake, layer.digest)[0]!;
    const owner = await connectedTo(workers, Number(new URL(fake.url).port), download.remotePort!);
    process.kill(owner, 'SIGKILL');
    const cut = await first;
    expect(cut.error ?? cut.status === 0).toBeTruthy();
    expect(cut.body.length).toBeLessThan(layer.size);

    // The survivor takes over without waiting for the dead worker's lease to expire.
    fake.setFault('blob', null);
    const started = Date.now();
    const again = await timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`);
    expect(deliveredExactly(again, layer.bytes)).toBe(true);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(2);
    await waitFor(async () => (await workerPids(served)).length === 2, 30_000, 'a new worker');
    expect(served.lines.filter((line) => line.msg === 'a worker died: starting another')).toHaveLength(1);
  });
});

/**
 * 20 clients GET `layer` at once: each gets its exact bytes through one upstream GET. Returns the
 * request log lines of the worker that did not download it (at least one).
 */
async function herdOnOneBlob(fake: FakeRegistry, served: Served, layer: { digest: string; bytes: Buffer }): Promise<Array<Record<string, unknown>>> {
  const responses = await Promise.all(Array.from({ length: 20 }, () => timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`)));
  for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
  expect(upstreamBlobGets(fake, layer.digest)).toHaveLength(1);
  const requestLines = () => served.lines.filter((line) => line.msg === 'request' && String(line.path) === `/v2/${REPO}/blobs/${layer.digest}`);
  await waitFor(() => requestLines().length >= 20, 20_000, 'the 20 request log lines');
  const owner = requestLines().find((line) => line.cache === 'upstream')!.worker;
  const other = requestLines().filter((line) => line.worker !== owner);
  expect(other.length).toBeGreaterThan(0);
  return other;
}

/** Cache fills in progress on disk: files under tmp/<process>/ of the cache directory. */
async function fillFiles(cacheDir: string): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  let count = 0;
  for (const owner of await readdir(path.join(cacheDir, 'tmp')).catch(() => [])) count += (await readdir(path.join(cacheDir, 'tmp', owner)).catch(() => [])).length;
  return count;
}

/** The pid among `pids` whose TCP connection from `localPort` goes to 127.0.0.1:`port` (/proc/net/tcp and each process's descriptors). */
async function connectedTo(pids: number[], port: number, localPort: number): Promise<number> {
  const { readFile, readdir, readlink } = await import('node:fs/promises');
  const inodes = new Set<string>();
  const portOf = (address: string) => Number.parseInt(address.split(':')[1]!, 16);
  for (const row of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const fields = row.trim().split(/\s+/);
    if (fields.length > 9 && portOf(fields[2]!) === port && portOf(fields[1]!) === localPort) inodes.add(fields[9]!);
  }
  for (const pid of pids) {
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (inodes.has(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? '')) return pid;
    }
  }
  throw new Error(`no worker is connected to port ${port} from port ${localPort}`);
}

/** The worker processes of a `serve --workers` primary (children of its pid). */
async function workerPids(served: Served): Promise<number[]> {
  const { readFile, readdir } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent === served.child.pid) pids.push(Number(entry));
  }
  return pids;
}
