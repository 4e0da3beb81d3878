/**
 * One upstream download per blob across the fleet (issue 15 item 4): the blob downloads of this
 * process (pull-through/blob-downloads.ts) behind a lease per digest, `blob <digest>`, whose
 * value names where the owner can be reached (coordination/redis-leases.ts).
 *
 * Leases come in levels, narrowest first: the workers of one machine (`serve --workers`, leases
 * kept by the primary, owners named by their loopback address), then the replicas (Redis, owners
 * named by `cluster.advertiseUrl`). Only the winner of one level contends at the next, so a
 * machine asks the fleet once, and its other workers follow their own winner, which follows the
 * fleet's owner when it lost there. At each level:
 *
 *   won      on to the next level; won at the last, the download runs here as ever, every lease
 *            won refreshed while it runs and released with its outcome when it settles;
 *   lost     the owner is asked for its download in progress (peer-client.ts, fleet-routes.ts),
 *            and this process fills its own disk from that stream as from an upstream: its
 *            clients follow the local file as it grows, the bytes are hashed here too, and a
 *            stream that ends short or wrong fails the check, so a client never gets a clean end
 *            of wrong bytes. Except a small blob that another worker of this machine downloads
 *            into the store they share: that is waited for (SHARED_STORE_WAIT_BYTES);
 *   no stream (no secret or address configured, the owner unreachable or not streaming): wait
 *            for the owner's outcome. Done: the content store has the blob. Failed or vanished
 *            (killed: its lease expires within its TTL): claim the lease again. Still running
 *            after `waitMs`: download here after all.
 *
 * Within the process every client of a digest shares one decision, then one download. The lease
 * is an optimisation; correctness comes from content addressing: when Redis is unreachable each
 * process downloads for itself (logged once per outage).
 */
import type { Digest } from '../domain/digest.js';
import { UpstreamUnavailableError } from '../domain/errors.js';
import type { ProxiedTarget } from '../domain/target.js';
import { CoordinationUnavailableError } from '../coordination/coordination-errors.js';
import { OutageNotice, type CoordinationLog } from '../coordination/outage-notice.js';
import type { Lease, LeaseClaim, LeaseWaitResult, Leases } from '../coordination/redis-leases.js';
import { BlobDownload, type DownloadStores, type RunningDownload } from '../pull-through/blob-download.js';
import { BlobDownloads, untilGone, type BlobDownloadsOptions, type HeldBlob, type Joined, type JoinOptions } from '../pull-through/blob-downloads.js';
import type { UpstreamPort } from '../pull-through/upstream-port.js';
import { OwnerFileFollow } from './owner-file-follow.js';
import type { PeerClient, PeerDownload } from './peer-client.js';

/**
 * A blob up to this size that another worker of this machine is downloading is not copied here
 * as it arrives: its owner's file lands in the store these workers share a few milliseconds
 * later, and serving that costs less than a second writer, hasher and set of metadata writes
 * for the same bytes (a cold pull of a 20-layer image of 5-440 KB layers on the test bed, two
 * workers: 228-285 ms copying in 6 runs, 202-231 ms waiting in 5). Larger blobs are followed
 * as they arrive (owner-file-follow.ts), so their clients' first byte does not wait for the
 * owner's last.
 */
export const SHARED_STORE_WAIT_BYTES = 1024 * 1024;

/** One level of leases (see above). */
export interface LeaseLevel {
  name: 'workers' | 'replicas';
  leases: Leases;
  /** Stored in this level's leases: where the others reach this process, or a unique name when they cannot. */
  owner: string;
  /** The others of the level can stream from the owner a lease names (an address and the secret). */
  streams: boolean;
}

export interface FleetDownloadsOptions extends BlobDownloadsOptions {
  /** Narrowest first. */
  levels: LeaseLevel[];
  /** Streams other owners' downloads; undefined: a process that loses the race waits instead. */
  peers?: PeerClient;
  /** Where a download streamed from another process lands (with S3: the local tier, not the bucket). */
  peerStores: DownloadStores;
  /**
   * The directory of the store the workers of this machine share (`cache.dir` with the
   * filesystem driver): another worker's download is followed in its file there, never copied.
   * Undefined: copied (peerStores).
   */
  sharedStoreRoot?: string;
  /** A killed owner's lease expires after this long; default 5,000 ms, refreshed every third of it. */
  leaseTtlMs?: number;
  /** How long to wait for an owner that cannot stream before downloading here; default 60 s. */
  waitMs?: number;
  log?: CoordinationLog;
}

/** A decision shared by every joiner of the digest in this process; each counts as wanting it on its own. */
type Decided = { held: HeldBlob; started: boolean };
type OwnerOutcome = LeaseWaitResult | 'unavailable';

export class FleetBlobDownloads extends BlobDownloads {
  readonly #fleet: FleetDownloadsOptions;
  readonly #leaseTtlMs: number;
  readonly #waitMs: number;
  readonly #deciding = new Map<string, Promise<Decided>>();
  readonly #peerFills = new Map<string, { download: RunningDownload; abort: AbortController }>();
  readonly #outages: OutageNotice[];

  constructor(options: FleetDownloadsOptions) {
    super(options);
    this.#fleet = options;
    this.#leaseTtlMs = options.leaseTtlMs ?? 5_000;
    this.#waitMs = options.waitMs ?? 60_000;
    this.#outages = options.levels.map((level) => new OutageNotice(`blob downloads (${level.name})`, 'downloading without that coordination', options.log));
  }

  override list(): Array<{ digest: string; bytesWritten: number; size: number | undefined; via: string }> {
    const peers = [...this.#peerFills.values()].map(({ download }) => ({ digest: download.digest.value, bytesWritten: download.written, size: download.size, via: download.via }));
    return [...super.list(), ...peers];
  }

  override running(digest: Digest): RunningDownload | undefined {
    return super.running(digest) ?? this.#peerFills.get(digest.value)?.download;
  }

  /**
   * As BlobDownloads.join: the joiner counts as wanting the download until it calls `leave`, and
   * stops waiting when its signal aborts; the decision (lease, stream, download) goes on for the
   * others.
   */
  override async join(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest, options: JoinOptions = {}): Promise<Joined> {
    const leave = this.wantedBy(digest, options.kind ?? 'client');
    try {
      const running = this.running(digest);
      if (running) return { held: running, started: false, leave };
      const pending = this.#deciding.get(digest.value);
      if (pending) return { held: (await untilGone(pending, options.signal)).held, started: false, leave };
      return { ...(await untilGone(this.#decideShared(target, upstream, digest), options.signal)), leave };
    } catch (error) {
      leave();
      throw error;
    }
  }

  #decideShared(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest): Promise<Decided> {
    const decision = this.#decide(target, upstream, digest);
    this.#deciding.set(digest.value, decision);
    const forget = () => {
      if (this.#deciding.get(digest.value) === decision) this.#deciding.delete(digest.value);
    };
    decision.then(forget, forget);
    return decision;
  }

  /** The download of `digest` this process runs or is about to run (the internal endpoint serves it), if any. */
  async inProgress(digest: Digest): Promise<RunningDownload | undefined> {
    await this.#deciding.get(digest.value)?.catch(() => {});
    return this.running(digest);
  }

  /**
   * Where a request for `digest` should go instead, when another worker of this machine owns its
   * download (a replica reaching this machine lands on any worker): that worker's address.
   */
  async relayFor(digest: Digest): Promise<string | undefined> {
    const machine = this.#fleet.levels[0];
    if (this.#fleet.levels.length < 2 || machine?.name !== 'workers') return undefined;
    const owner = await machine.leases.ownerOf(`blob ${digest.value}`).catch(() => undefined);
    return owner !== undefined && owner !== machine.owner ? owner : undefined;
  }

  override async drain(timeoutMs: number): Promise<void> {
    const reason = new UpstreamUnavailableError('the download was abandoned: the mirror is shutting down');
    const peers = [...this.#peerFills.values()];
    const abandon = setTimeout(() => peers.forEach(({ abort }) => abort.abort(reason)), timeoutMs);
    await Promise.all([super.drain(timeoutMs), ...peers.map(({ download }) => download.settled.catch(() => {}))]);
    clearTimeout(abandon);
  }

  async #decide(target: ProxiedTarget, upstream: UpstreamPort, digest: Digest): Promise<Decided> {
    return this.#decideAt(0, [], target, upstream, digest);
  }

  /** Contends at `index` holding the leases won below it; they are released when what is returned settles. */
  async #decideAt(index: number, held: Lease[], target: ProxiedTarget, upstream: UpstreamPort, digest: Digest): Promise<Decided> {
    const level = this.#fleet.levels[index];
    if (!level) return this.#own(held, target, upstream, digest);
    const key = `blob ${digest.value}`;
    for (;;) {
      const claim = await this.#claim(index, key);
      if (!claim) return this.#decideAt(index + 1, held, target, upstream, digest);
      if (claim.acquired) return this.#decideAt(index + 1, [...held, claim.lease], target, upstream, digest);
      const followed = level.streams && claim.owner !== level.owner ? await this.#follow(level, claim.owner, digest) : undefined;
      if (typeof followed === 'object') return { held: this.#releasing(held, followed), started: false };
      // A small blob on the shared store is waited for as long as a fill may take; otherwise until waitMs.
      const outcome = await this.#awaitOwner(index, key, claim.value, followed === 'wait-for-owner' ? this.#fleet.fillTimeoutMs : this.#waitMs);
      // Done: the store has it (super.join looks there first). Too long, or no coordination: fetch here.
      if (outcome === 'ok' || outcome === 'timeout' || outcome === 'unavailable') return this.#own(held, target, upstream, digest);
    }
  }

  /** The lease at level `index`, or undefined when that coordination is unreachable. */
  async #claim(index: number, key: string): Promise<LeaseClaim | undefined> {
    const level = this.#fleet.levels[index]!;
    const outage = this.#outages[index]!;
    if (!outage.shouldTryRedis()) return undefined;
    try {
      const claim = await level.leases.acquire(key, level.owner, this.#leaseTtlMs);
      outage.noticeUp();
      return claim;
    } catch (error) {
      if (!(error instanceof CoordinationUnavailableError)) throw error;
      outage.noticeDown(error);
      return undefined;
    }
  }

  /** Downloads (or finds the blob stored) holding `held`; they are released, with the outcome, when it settles. */
  async #own(held: Lease[], target: ProxiedTarget, upstream: UpstreamPort, digest: Digest): Promise<Decided> {
    let joined: Joined;
    try {
      // Without the signal: the decision is shared; each joiner counts itself (join above).
      joined = await super.join(target, upstream, digest);
    } catch (error) {
      for (const lease of held) void lease.release('failed');
      throw error;
    }
    joined.leave();
    return { held: this.#releasing(held, joined.held), started: joined.started };
  }

  #releasing<T extends HeldBlob>(held: Lease[], value: T): T {
    value.settled.then(() => held.forEach((lease) => void lease.release('ok')), () => held.forEach((lease) => void lease.release('failed')));
    return value;
  }

  /**
   * Follows the owner's download in progress: in the owner's own file when both are workers of
   * this machine (owner-file-follow.ts), else by filling this process's disk from its stream.
   * Undefined when it cannot be had; 'wait-for-owner' for a small blob another worker of this
   * machine downloads onto the store this one serves from (see SHARED_STORE_WAIT_BYTES).
   */
  async #follow(level: LeaseLevel, owner: string, digest: Digest): Promise<RunningDownload | 'wait-for-owner' | undefined> {
    const peers = this.#fleet.peers;
    if (!peers) return undefined;
    const abort = new AbortController();
    const deadline = setTimeout(() => abort.abort(new UpstreamUnavailableError(`streaming ${digest.value} from ${owner} exceeded the fill deadline`)), this.#fleet.fillTimeoutMs);
    let download: RunningDownload;
    try {
      const sharedStore = this.#ownerFillsSharedStore(level);
      const answer: PeerDownload = await peers.download(owner, digest, abort.signal, sharedStore && this.#fleet.sharedStoreRoot !== undefined);
      if (sharedStore && answer.size !== undefined && answer.size <= SHARED_STORE_WAIT_BYTES) {
        clearTimeout(deadline);
        drainPeerBody(answer);
        return 'wait-for-owner';
      }
      const inOwnerFile = sharedStore ? this.#inOwnerFile(digest, answer, abort.signal) : undefined;
      if (!inOwnerFile && answer.progress) {
        // Progress without a file this process may read is nothing to copy from.
        drainPeerBody(answer);
        throw new UpstreamUnavailableError(`the owner of ${digest.value} sent its progress, and its file cannot be followed here`);
      }
      download = inOwnerFile ?? (await BlobDownload.start(digest, answer.via, answer, this.#fleet.peerStores, abort.signal));
    } catch (error) {
      clearTimeout(deadline);
      this.#fleet.log?.info({ owner, digest: digest.value, err: error }, 'cannot stream the download from its owner: waiting for it to finish instead');
      return undefined;
    }
    this.#peerFills.set(digest.value, { download, abort });
    const done = () => {
      clearTimeout(deadline);
      if (this.#peerFills.get(digest.value)?.download === download) this.#peerFills.delete(digest.value);
    };
    download.settled.then(done, done);
    return download;
  }

  /** The owner's download followed in its file, when the owner named one inside the shared store. */
  #inOwnerFile(digest: Digest, answer: PeerDownload, signal: AbortSignal): OwnerFileFollow | undefined {
    const root = this.#fleet.sharedStoreRoot;
    if (root === undefined || answer.files === undefined || answer.size === undefined) return undefined;
    try {
      return new OwnerFileFollow(digest, { size: answer.size, body: answer.body, via: answer.via, anonymous: answer.anonymous, progress: answer.progress }, answer.files, root, signal);
    } catch (error) {
      this.#fleet.log?.warn({ digest: digest.value, err: error }, 'not following another worker\'s file: copying its download instead');
      return undefined;
    }
  }

  /**
   * The owner at `level` downloads into the store this process serves from: the workers of one
   * machine without replicas. (With replicas, the worker that owns a blob here may itself be
   * following another replica into its local tier only, which this process would not find.)
   */
  #ownerFillsSharedStore(level: LeaseLevel): boolean {
    return level.name === 'workers' && this.#fleet.levels.length === 1;
  }

  async #awaitOwner(index: number, key: string, observed: string, timeoutMs: number): Promise<OwnerOutcome> {
    try {
      return await this.#fleet.levels[index]!.leases.waitForRelease(key, { observed, timeoutMs });
    } catch (error) {
      if (!(error instanceof CoordinationUnavailableError)) throw error;
      this.#outages[index]!.noticeDown(error);
      return 'unavailable';
    }
  }
}

/**
 * Reads the owner's answer to its end without keeping it, so the connection goes back to the
 * pool for the next blob; an error only ends this read (the lease says how the owner's download ended).
 */
function drainPeerBody(answer: PeerDownload): void {
  answer.body.on('error', () => {});
  answer.body.resume();
}
