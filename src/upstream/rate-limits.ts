/**
 * What each upstream says about its pull rate limit, and when to stop asking it.
 *
 * Docker Hub sends `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600` (the IETF
 * RateLimit header draft's form: a quota, then its window in seconds) and
 * `docker-ratelimit-source` on manifest responses; only manifest GETs count against the quota.
 * The latest values per upstream are kept for /metrics and the status page.
 *
 * After a 429 from the registry itself the upstream gets no manifest GET until Retry-After (RFC
 * 9110 section 10.2.3, at most 6 hours) has passed, or DEFAULT_RETRY_AFTER_SECONDS without one:
 * every GET sent meanwhile would only be refused and may extend the penalty. HEADs are free on
 * Docker Hub, so revalidation goes on.
 */
import { TooManyRequestsError } from '../domain/errors.js';
import { headerValue, parseRetryAfter } from './upstream-failures.js';
import type { UpstreamResponseInfo } from './upstream-registry.js';

export const DEFAULT_RETRY_AFTER_SECONDS = 60;

export interface RateLimitState {
  limit: number | undefined;
  remaining: number | undefined;
  windowSeconds: number | undefined;
  /** docker-ratelimit-source: whom the quota is counted against (an IP or an account). */
  source: string | undefined;
  /** When these values were last seen (ms since the epoch); undefined if never. */
  observedAtMs: number | undefined;
  /** Manifest GETs are held back until this time (ms since the epoch) after a 429. */
  blockedUntilMs: number | undefined;
}

/** The fleet's records, one per upstream, kept `ttlMs` (replicas/shared-rate-limits.ts). */
export interface SharedRateLimitRecords {
  get(upstream: string): Promise<RateLimitState | undefined>;
  set(upstream: string, state: RateLimitState, ttlMs: number): Promise<void>;
}

/** A shared record outlives the block it carries by this much, and lives at least this long. */
const SHARED_RECORD_SLACK_MS = 60_000;
/** Headers without a block are kept an hour: enough for the status page, short enough to go stale out. */
const SHARED_OBSERVATION_MS = 60 * 60_000;

export interface RateLimitOptions {
  defaultRetryAfterSeconds?: number;
  now?: () => number;
}

export class UpstreamRateLimits {
  private readonly states = new Map<string, RateLimitState>();
  private readonly defaultRetryAfterSeconds: number;
  private readonly now: () => number;
  private shared: SharedRateLimitRecords | undefined;

  constructor(options: RateLimitOptions = {}) {
    const fallback = options.defaultRetryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS;
    if (!(Number.isFinite(fallback) && fallback > 0)) throw new TypeError(`expected defaultRetryAfterSeconds to be a positive number, got ${fallback}`);
    this.defaultRetryAfterSeconds = fallback;
    this.now = options.now ?? Date.now;
  }

  /**
   * Feed every upstream response here (UpstreamRegistry's onResponse). Never throws. Only the
   * registry's own answers count: a CDN hop or the token realm has its own limits, which say
   * nothing about the registry's manifest quota.
   */
  observe(info: UpstreamResponseInfo): void {
    if (info.kind === 'token' || info.crossOrigin) return;
    const recorded = info.kind === 'manifest' && this.recordHeaders(info);
    if (info.status === 429) {
      const retryAfter = parseRetryAfter(headerValue(info.headers, 'retry-after'), this.now()) ?? this.defaultRetryAfterSeconds;
      const state = this.state(info.upstream);
      state.blockedUntilMs = Math.max(state.blockedUntilMs ?? 0, this.now() + retryAfter * 1000);
    }
    if (recorded || info.status === 429) this.publish(info.upstream);
  }

  /** Shares what this process learns with the fleet, and reads what the fleet learnt (see above). */
  shareWith(records: SharedRateLimitRecords): void {
    this.shared = records;
  }

  /** Takes in the fleet's record for `upstream` (a block another replica got); never rejects. */
  async refresh(upstream: string): Promise<void> {
    const remote = await this.shared?.get(upstream).catch(() => undefined);
    if (!remote) return;
    const state = this.state(upstream);
    if (remote.blockedUntilMs !== undefined) state.blockedUntilMs = Math.max(state.blockedUntilMs ?? 0, remote.blockedUntilMs);
    if ((remote.observedAtMs ?? 0) > (state.observedAtMs ?? 0)) {
      Object.assign(state, { limit: remote.limit, remaining: remote.remaining, windowSeconds: remote.windowSeconds, source: remote.source, observedAtMs: remote.observedAtMs });
    }
  }

  /** Throws TooManyRequestsError (with the seconds left) while manifest GETs to `upstream` are held back. */
  assertManifestGetAllowed(upstream: string, what: string): void {
    const left = this.secondsBlocked(upstream);
    if (left > 0) throw new TooManyRequestsError(`${what}: upstream ${upstream} rate-limited us; not asking again for ${left} s`, left);
  }

  /** Seconds until manifest GETs may go to `upstream` again; 0 when they may now. */
  secondsBlocked(upstream: string): number {
    const until = this.states.get(upstream)?.blockedUntilMs;
    if (until === undefined) return 0;
    return Math.max(0, Math.ceil((until - this.now()) / 1000));
  }

  /** The latest known state of every upstream that has told us anything. */
  snapshot(): Array<{ upstream: string } & RateLimitState> {
    return [...this.states].map(([upstream, state]) => ({ upstream, ...state }));
  }

  private publish(upstream: string): void {
    if (!this.shared) return;
    const state = this.state(upstream);
    const blockedFor = (state.blockedUntilMs ?? 0) - this.now();
    const ttlMs = blockedFor > 0 ? blockedFor + SHARED_RECORD_SLACK_MS : SHARED_OBSERVATION_MS;
    this.shared.set(upstream, { ...state }, ttlMs).catch(() => {});
  }

  /** True when the response carried rate-limit headers. */
  private recordHeaders(info: UpstreamResponseInfo): boolean {
    const limit = parseQuota(headerValue(info.headers, 'ratelimit-limit'));
    const remaining = parseQuota(headerValue(info.headers, 'ratelimit-remaining'));
    if (!limit && !remaining) return false;
    const state = this.state(info.upstream);
    state.limit = limit?.value ?? state.limit;
    state.remaining = remaining?.value ?? state.remaining;
    state.windowSeconds = limit?.windowSeconds ?? remaining?.windowSeconds ?? state.windowSeconds;
    state.source = headerValue(info.headers, 'docker-ratelimit-source') ?? state.source;
    state.observedAtMs = this.now();
    return true;
  }

  private state(upstream: string): RateLimitState {
    let state = this.states.get(upstream);
    if (!state) {
      state = { limit: undefined, remaining: undefined, windowSeconds: undefined, source: undefined, observedAtMs: undefined, blockedUntilMs: undefined };
      this.states.set(upstream, state);
    }
    return state;
  }
}

/** `100;w=21600` -> { value: 100, windowSeconds: 21600 }; `100` alone is accepted too. */
export function parseQuota(text: string | undefined): { value: number; windowSeconds: number | undefined } | undefined {
  if (text === undefined) return undefined;
  const [quota, ...parameters] = text.split(';').map((part) => part.trim());
  if (!quota || !/^[0-9]+$/.test(quota)) return undefined;
  const window = parameters.map((parameter) => /^w=([0-9]+)$/.exec(parameter)?.[1]).find((value) => value !== undefined);
  return { value: Number(quota), windowSeconds: window === undefined ? undefined : Number(window) };
}
