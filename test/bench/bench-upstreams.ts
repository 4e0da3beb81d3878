/**
 * The upstream side of the benchmark, built from the interop support pieces but with byte taps
 * where the interop composition has none:
 *
 *   token server ── realm of ──> hub (docker-registry, token auth) <── hub counting proxy <── hub tap <── mirrors
 *                                  └─ blob GET: 307 ──> CDN tap ──> CDN (static files, counts)
 *   gcr (docker-registry, no auth) <── gcr counting proxy      (only because the mirror config names it)
 *
 * Requests are counted by the counting proxy and the CDN (their RequestLogs); bytes by the taps.
 * Seeded with library/alpine:3.20 and library/busybox:latest (20 small layers) from the interop
 * catalog, and the benchmark's own images.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup } from '../interop/support/processes.js';
import { startTokenServer, HUB_USER, HUB_PASSWORD } from '../interop/support/token-server.js';
import { startCdnServer } from '../interop/support/cdn-server.js';
import { startRegistry } from '../interop/support/registries.js';
import { buildCatalog, findImage } from '../interop/support/catalog.js';
import { blobsOf } from '../interop/support/images.js';
import { PushClient } from '../interop/support/push-client.js';
import type { Upstreams } from '../interop/support/upstreams.js';
import { ByteTap } from './byte-tap.js';
import { APP_LAYER_SIZES, HUGE_LAYER_SIZE, buildImage, pushImage, type BenchImage } from './bench-images.js';

export interface BenchUpstreams {
  /** The interop shape, for `startMirror` (its hub URL is overridden with `hubTap`). */
  readonly upstreams: Upstreams;
  readonly hubTap: ByteTap;
  readonly cdnTap: ByteTap;
  readonly app: BenchImage;
  readonly small: { repo: string; tag: string; digest: string };
  /** Many small layers: a cold pull of it is bound by round trips, not bytes (issue 16). */
  readonly layered: { repo: string; tag: string; totalBytes: number };
  readonly huge?: BenchImage;
  /** Where the seeded blob files are (`blobs/sha256/<hex>`), for the nginx ceiling. */
  readonly seedDir: string;
  stop(): Promise<void>;
}

export async function startBenchUpstreams(rootDir: string, withHuge: boolean, log: (line: string) => void): Promise<BenchUpstreams> {
  const processes = new ProcessGroup();
  const closers: Array<() => Promise<void>> = [];
  const stop = async () => {
    await processes.stopAll();
    for (const close of closers.splice(0).reverse()) await close();
  };
  try {
    const dirs = { token: join(rootDir, 'token'), hub: join(rootDir, 'hub'), gcr: join(rootDir, 'gcr'), seed: join(rootDir, 'seed') };
    Object.values(dirs).forEach((dir) => mkdirSync(dir, { recursive: true }));
    const token = await startTokenServer(dirs.token);
    closers.push(() => token.close());
    const cdn = await startCdnServer(join(dirs.hub, 'data'));
    closers.push(() => cdn.close());
    const cdnTap = await ByteTap.start(Number(new URL(cdn.url).port));
    closers.push(() => cdnTap.close());
    const hub = await startRegistry(processes, dirs.hub, 'hub', { token, cdnUrl: cdnTap.url });
    closers.push(() => hub.proxy.close());
    const hubTap = await ByteTap.start(hub.proxy.port);
    closers.push(() => hubTap.close());
    const gcr = await startRegistry(processes, dirs.gcr, 'gcr');
    closers.push(() => gcr.proxy.close());

    const catalog = buildCatalog();
    const alpine = findImage(catalog, 'library/alpine', '3.20');
    const busybox = findImage(catalog, 'library/busybox', 'latest');
    const pusher = new PushClient(hub.proxy.target, { username: HUB_USER, password: HUB_PASSWORD });
    for (const seeded of [alpine, busybox]) await pusher.pushImage(seeded.repo, seeded.tag, seeded.image);
    log('generating and pushing myorg/app:v1 (~153 MiB)');
    const app = await buildImage(dirs.seed, 'myorg/app', 'v1', [APP_LAYER_SIZES.large, APP_LAYER_SIZES.medium, APP_LAYER_SIZES.small]);
    await pushImage(hub.proxy.target, token.url, app);
    let huge: BenchImage | undefined;
    if (withHuge) {
      log('generating and pushing myorg/huge:v1 (1 GiB layer, streamed)');
      huge = await buildImage(dirs.seed, 'myorg/huge', 'v1', [HUGE_LAYER_SIZE]);
      await pushImage(hub.proxy.target, token.url, huge);
    }
    const upstreams: Upstreams = { token, cdn, hub, gcr, catalog: [alpine, busybox], processes, stop };
    const small = { repo: alpine.repo, tag: alpine.tag, digest: alpine.image.digest };
    const layered = { repo: busybox.repo, tag: busybox.tag, totalBytes: busybox.image.size + blobsOf(busybox.image).reduce((sum, blob) => sum + blob.size, 0) };
    return { upstreams, hubTap, cdnTap, app, small, layered, ...(huge ? { huge } : {}), seedDir: dirs.seed, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
