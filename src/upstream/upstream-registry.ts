/**
 * The client for one configured upstream registry (OCI distribution-spec "Pull" endpoints).
 * It authenticates the way the registry asks to (see upstream-auth.ts), follows redirects
 * without leaking credentials (redirects.ts), and turns every failure into a domain error.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Agent } from 'undici';
import type { UpstreamConfig } from '../config/mirror-config.js';
import { parseDigest } from '../domain/digest.js';
import { AnonymousAccessRefusedError, BlobUnknownError, ManifestUnknownError, NameUnknownError, UnauthorizedError, UntrustedRealmError } from '../domain/errors.js';
import { MAX_MANIFEST_BYTES, OCI_INDEX, UPSTREAM_MANIFEST_ACCEPT } from '../domain/media-types.js';
import { assertRepositoryName, parseManifestReference } from '../domain/reference.js';
import { chooseRegistryChallenge, parseAuthChallenges } from './auth-challenge.js';
import { BlobSocketClient, blobSocketReads, type SocketResponse } from './blob-socket-client.js';
import { dialPolicyFor, guardedConnector } from './dial-guard.js';
import { createUpstreamDispatcher, discardBody, guardBody, sendOnce, type HopRequest, type HopResponse, type SendHop, type UpstreamResponse, type UpstreamTimeouts } from './http-dispatcher.js';
import { contentLength, readBodyLimited } from './read-body.js';
import { sendFollowingRedirects } from './redirects.js';
import { checkTagList, discarded, expectOk, isNotFound, manifestResult, referrersResult, type ManifestResult, type UpstreamAnswer } from './upstream-answers.js';
import { requestToken } from './token-endpoint.js';
import { parseBaseUrl } from './upstream-url.js';
import { UpstreamAuth, type Credential } from './upstream-auth.js';
import { errorForStatus, headerValue } from './upstream-failures.js';

export type { UpstreamTimeouts } from './http-dispatcher.js';
export type { ManifestResult } from './upstream-answers.js';

export type UpstreamCallKind = 'manifest' | 'blob' | 'tags' | 'referrers' | 'token' | 'ping';

export interface UpstreamResponseInfo {
  upstream: string;
  method: string;
  kind: UpstreamCallKind;
  status: number;
  /** Until the response headers arrived; bodies stream afterwards. */
  durationMs: number;
  headers: Record<string, string | string[] | undefined>;
  /** Set when the response came from another origin than the upstream's (a CDN after a redirect, a token realm). */
  crossOrigin?: boolean;
}

/** An upstream's config entry; the host lists may be left out (empty) where a client is built by hand. */
export type UpstreamClientConfig = Omit<UpstreamConfig, 'tokenRealms' | 'redirectHosts'> & Partial<Pick<UpstreamConfig, 'tokenRealms' | 'redirectHosts'>>;

export interface UpstreamOptions {
  name: string;
  config: UpstreamClientConfig;
  timeouts: UpstreamTimeouts;
  /** Called for every response, redirect hops, 401s and token endpoint included. Must not throw. */
  onResponse?: (info: UpstreamResponseInfo) => void;
  /** Where a misconfiguration the upstream reveals (an untrusted token realm) is reported, once. */
  log?: Pick<Logger, 'warn'>;
}

export interface BlobResult {
  /** Content-Length of the final 200. */
  size: number | undefined;
  /**
   * The caller consumes or destroys it; read errors are undici's (socket, body timeout). An
   * error listener is attached already, so destroying it unread cannot crash the process.
   */
  body: Readable;
  /** Fetched without the configured credentials (`withoutCredentials`): the upstream serves it to anyone. */
  anonymous?: boolean;
}

export interface TagsResult {
  body: Buffer;
  /** Link header, for pagination (distribution-spec "Listing Tags"). */
  link: string | undefined;
}

interface UpstreamCall {
  kind: Exclude<UpstreamCallKind, 'token'>;
  method: 'GET' | 'HEAD';
  url: URL;
  /** Token scope (distribution token spec "Requesting a Token"). */
  scope: string;
  accept?: string;
  signal?: AbortSignal;
  /** Names the call in error messages: method and path only, never query or headers. */
  what: string;
  /** Send without the configured credentials (probes, and fetches for clients that did not authenticate). */
  anonymous?: boolean;
  /** Take a redirect to another origin as the answer instead of following it (probes). */
  stopAtOtherOrigin?: boolean;
}

/** Options of every upstream call; `anonymous` only from `withoutCredentials`. */
interface CallOptions {
  signal?: AbortSignal;
  anonymous?: boolean;
}

/** What pulls ask of an upstream: UpstreamRegistry, or its view without credentials (`withoutCredentials`). */
export type UpstreamClient = Pick<UpstreamRegistry, 'name' | 'fetchManifest' | 'fetchBlob' | 'prepareFetch' | 'headBlob' | 'fetchTags' | 'fetchReferrers'>;

/** What an anonymous probe asks about (see probeAnonymous). */
export type AnonymousProbeObject = { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };

/** Tag lists are unbounded in the spec; this is far above any real page. */
const MAX_TAGS_BYTES = 16 * 1024 * 1024;

export class UpstreamRegistry {
  readonly name: string;
  readonly #baseUrl: URL;
  readonly #dispatcher: Agent;
  /** Blob GETs, whose bodies go to the cache without undici's per-read buffers (blob-socket-client.ts). */
  readonly #blobClient: BlobSocketClient;
  readonly #auth: UpstreamAuth;
  /** The same upstream as a client without credentials: its own challenge and token cache. */
  readonly #anonymousAuth: UpstreamAuth;
  /**
   * This upstream as a client without the mirror's credentials sees it: every call is sent with
   * the anonymous client's token (or none), as probeAnonymous sends. What the mirror fetches for
   * a client that did not authenticate before it knows the repository is public
   * (pull-through/guarded-registry.ts).
   */
  readonly withoutCredentials: UpstreamClient;
  readonly #onResponse: ((info: UpstreamResponseInfo) => void) | undefined;
  readonly #log: Pick<Logger, 'warn'> | undefined;
  /** A username is configured: the client has Basic credentials to send. */
  readonly #hasCredentials: boolean;
  #realmWarned = false;

  constructor(options: UpstreamOptions) {
    this.name = options.name;
    this.#baseUrl = parseBaseUrl(options.name, options.config.url);
    this.#onResponse = options.onResponse;
    this.#log = options.log;
    const { username, password, tokenRealms, redirectHosts } = options.config;
    this.#hasCredentials = username !== undefined;
    const dialPolicy = dialPolicyFor(options.name, this.#baseUrl, [...(tokenRealms ?? []), ...(redirectHosts ?? [])]);
    this.#dispatcher = createUpstreamDispatcher(options.name, options.timeouts, dialPolicy);
    this.#blobClient = new BlobSocketClient(guardedConnector(dialPolicy, options.timeouts.connectMs, blobSocketReads()), options.timeouts);
    const sendToken = this.#hopSender('token');
    const authOptions = {
      upstreamName: this.name,
      upstreamUrl: this.#baseUrl,
      tokenRealms: tokenRealms ?? [],
      requestToken: (request: Parameters<typeof requestToken>[1]) => requestToken(sendToken, request, this.name),
    };
    this.#auth = new UpstreamAuth({ ...authOptions, username, password });
    this.#anonymousAuth = new UpstreamAuth(authOptions);
    this.withoutCredentials = this.#withoutCredentials();
  }

  /**
   * Whether a client without credentials could read `object` in `repo`: the request is sent
   * without the configured credentials (an anonymous token where the upstream uses tokens).
   * readable: 200; refused: 401 or 403; missing: 404. Outages throw as for any call, and so does
   * an untrusted token realm: that is the config's fault, not the repository's, and saying
   * "refused" would make every public image look missing.
   */
  probeAnonymous(repo: string, object: AnonymousProbeObject): Promise<'readable' | 'refused' | 'missing'> {
    return this.#probe(repo, object, true);
  }

  /**
   * Whether the upstream serves `object` in `repo` to the mirror's own credentials, with the same
   * answers as probeAnonymous: what an authenticated client may read under a proxied name that
   * the cache holds through another repository (pull-through/content-grants.ts).
   */
  probe(repo: string, object: AnonymousProbeObject): Promise<'readable' | 'refused' | 'missing'> {
    return this.#probe(repo, object, false);
  }

  async #probe(repo: string, object: AnonymousProbeObject, anonymous: boolean): Promise<'readable' | 'refused' | 'missing'> {
    const call = this.#probeCall(repo, object);
    let answer: UpstreamAnswer;
    try {
      answer = await this.#request({ ...call, anonymous, stopAtOtherOrigin: true });
    } catch (error) {
      if (isRegistryRefusal(error)) return 'refused';
      throw error;
    }
    const status = discarded(answer, answer.response.statusCode);
    // A redirect is the registry's yes: it sends to its storage only clients it let in. So the
    // storage is not asked at all (one round trip less before a miss's first byte; and what it
    // says to a HEAD, a presigned GET URL may refuse one, is not about access).
    if (status === 200 || answer.crossOrigin) return 'readable';
    if (status === 404) return 'missing';
    if (status === 403) return 'refused';
    throw errorForStatus(status, answer.response.headers, call.what);
  }

  /**
   * GET or HEAD a manifest. 404 -> ManifestUnknownError. A GET's body over MAX_MANIFEST_BYTES, or
   * without a manifest media type (upstream-answers.ts) -> UpstreamBadResponseError.
   */
  async fetchManifest(repo: string, reference: string, options: CallOptions & { method: 'GET' | 'HEAD'; accept: string }): Promise<ManifestResult> {
    parseManifestReference(reference);
    const call = this.#call('manifest', options.method, repo, `manifests/${reference}`, options);
    const answer = await this.#request(call);
    if (isNotFound(answer)) throw discarded(answer, new ManifestUnknownError(`manifest ${reference} is not known to upstream ${this.name} in ${repo}`));
    expectOk(answer, call.what);
    const { response } = answer;
    if (options.method === 'HEAD') {
      discardBody(response);
      return manifestResult(response, undefined, call.what);
    }
    return manifestResult(response, await readBodyLimited(response, MAX_MANIFEST_BYTES, call.what, call.signal), call.what);
  }

  /** GET a blob, following redirects. 404 -> BlobUnknownError. */
  async fetchBlob(repo: string, digest: string, options: CallOptions = {}): Promise<BlobResult> {
    parseDigest(digest);
    const call = this.#call('blob', 'GET', repo, `blobs/${digest}`, options);
    let answer: UpstreamAnswer<SocketResponse>;
    try {
      answer = await this.#request(call, this.#hopSender('blob', (request, what) => this.#blobClient.send(request, what)));
    } catch (error) {
      if (call.anonymous && isRegistryRefusal(error)) throw refusedAnonymously(call);
      throw error;
    }
    if (isNotFound(answer)) throw discarded(answer, new BlobUnknownError(`blob ${digest} is not known to upstream ${this.name} in ${repo}`));
    // The registry's own 403; its storage refusing after a redirect (the registry's yes) is not about access.
    if (call.anonymous && !answer.crossOrigin && answer.response.statusCode === 403) throw discarded(answer, refusedAnonymously(call));
    expectOk(answer, call.what);
    return { size: contentLength(answer.response), body: guardBody(answer.response.body), ...(call.anonymous ? { anonymous: true } : {}) };
  }

  /**
   * Learns how the upstream wants to be authenticated before any pull needs it, from its answer
   * to `GET /v2/` (distribution-spec "Determining Support", the request docker and distribution's
   * own proxy send first): a 401's challenge is remembered, so the first miss of this process
   * asks for its token at once instead of paying a 401 round trip first (issue 16: a miss's
   * first byte). A Bearer challenge is learned by both clients, the configured one and the one
   * without credentials (anonymous probes): docker answers it with an anonymous token. Basic only
   * by a client with credentials to send: some registries ask it of /v2/ while serving public
   * repositories without any. Resolves whether a challenge was learned; never rejects (an outage
   * or a refusal here only means the first miss learns as before).
   */
  async learnChallenge(): Promise<boolean> {
    const url = new URL(`${this.#baseUrl.pathname.replace(/\/+$/, '')}/v2/`, this.#baseUrl);
    try {
      const response = await this.#hopSender('ping')({ method: 'GET', url, headers: {} }, `GET /v2/ on upstream ${this.name}`);
      discardBody(response);
      if (response.statusCode !== 401) return false;
      const header = response.headers['www-authenticate'];
      const bearer = chooseRegistryChallenge(parseAuthChallenges(header))?.scheme === 'bearer';
      if (!bearer && !this.#hasCredentials) return false;
      this.#learn(this.#auth, header);
      if (bearer) this.#anonymousAuth.learn(header);
      return true;
    } catch {
      return false;
    }
  }

  /** Asks for the token a pull from `repo` needs, if the upstream wants tokens and none is cached; shared with the fetch that follows. */
  prepareFetch(repo: string): void {
    prefetchToken(this.#auth, repo);
  }

  /** The calls of `withoutCredentials`: each sent with the anonymous client's credential. */
  #withoutCredentials(): UpstreamClient {
    return {
      name: this.name,
      fetchManifest: (repo, reference, options) => this.fetchManifest(repo, reference, { ...options, anonymous: true }),
      fetchBlob: (repo, digest, options) => this.fetchBlob(repo, digest, { ...options, anonymous: true }),
      prepareFetch: (repo) => prefetchToken(this.#anonymousAuth, repo),
      headBlob: (repo, digest, options) => this.headBlob(repo, digest, { ...options, anonymous: true }),
      fetchTags: (repo, query, options) => this.fetchTags(repo, query, { ...options, anonymous: true }),
      fetchReferrers: (repo, digest, artifactType, options) => this.fetchReferrers(repo, digest, artifactType, { ...options, anonymous: true }),
    };
  }

  /** HEAD a blob, following redirects: its size without its bytes. 404 -> BlobUnknownError. */
  async headBlob(repo: string, digest: string, options: CallOptions = {}): Promise<{ size: number | undefined }> {
    parseDigest(digest);
    const call = this.#call('blob', 'HEAD', repo, `blobs/${digest}`, options);
    const answer = await this.#request(call);
    if (isNotFound(answer)) throw discarded(answer, new BlobUnknownError(`blob ${digest} is not known to upstream ${this.name} in ${repo}`));
    expectOk(answer, call.what);
    return discarded(answer, { size: contentLength(answer.response) });
  }

  /** GET a tag list; `query` passes `n` and `last` through. 404 -> NameUnknownError. */
  async fetchTags(repo: string, query: string, options: CallOptions = {}): Promise<TagsResult> {
    const given = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
    const passed = new URLSearchParams([...given].filter(([key]) => key === 'n' || key === 'last'));
    const call = this.#call('tags', 'GET', repo, 'tags/list', { ...options, accept: 'application/json', query: passed });
    const answer = await this.#request(call);
    if (isNotFound(answer)) throw discarded(answer, new NameUnknownError(`repository ${repo} is not known to upstream ${this.name}`));
    expectOk(answer, call.what);
    const body = await readBodyLimited(answer.response, MAX_TAGS_BYTES, call.what, call.signal);
    checkTagList(body, call.what);
    return { body, link: headerValue(answer.response.headers, 'link') };
  }

  /** GET the referrers index (distribution-spec "Listing Referrers"); null when the upstream has no such API (404). */
  async fetchReferrers(repo: string, digest: string, artifactType?: string, options: CallOptions = {}): Promise<{ body: Buffer; contentType: string } | null> {
    parseDigest(digest);
    const query = new URLSearchParams(artifactType === undefined ? [] : [['artifactType', artifactType]]);
    const call = this.#call('referrers', 'GET', repo, `referrers/${digest}`, { ...options, accept: OCI_INDEX, query });
    const answer = await this.#request(call);
    if (isNotFound(answer)) return discarded(answer, null);
    expectOk(answer, call.what);
    return referrersResult(answer.response, await readBodyLimited(answer.response, MAX_MANIFEST_BYTES, call.what, call.signal), call.what);
  }

  async close(): Promise<void> {
    this.#blobClient.close();
    await this.#dispatcher.close();
  }

  #probeCall(repo: string, object: AnonymousProbeObject): UpstreamCall {
    if (object.kind === 'tags') return this.#call('tags', 'GET', repo, 'tags/list', { accept: 'application/json', query: new URLSearchParams({ n: '1' }) });
    if (object.kind === 'blob') return this.#call('blob', 'HEAD', repo, `blobs/${parseDigest(object.digest).value}`, {});
    parseManifestReference(object.reference);
    return this.#call('manifest', 'HEAD', repo, `manifests/${object.reference}`, { accept: UPSTREAM_MANIFEST_ACCEPT });
  }

  #call(kind: UpstreamCall['kind'], method: 'GET' | 'HEAD', repo: string, tail: string, options: CallOptions & { accept?: string; query?: URLSearchParams }): UpstreamCall {
    assertRepositoryName(repo);
    const path = `/v2/${repo}/${tail}`;
    const url = new URL(this.#baseUrl.pathname.replace(/\/+$/, '') + path, this.#baseUrl);
    if (options.query?.size) url.search = options.query.toString();
    const what = `${method} ${path} on upstream ${this.name}`;
    return { kind, method, url, scope: `repository:${repo}:pull`, accept: options.accept, signal: options.signal, what, anonymous: options.anonymous };
  }

  /**
   * Sends a call with whatever credential the upstream asked for before. On a 401 from the
   * upstream itself: learn the challenge, drop a refused token, get a fresh credential and try
   * once more; a second 401 is final. Anything from a redirect target is the caller's to judge.
   */
  #request(call: UpstreamCall): Promise<UpstreamAnswer>;
  #request<Response extends HopResponse>(call: UpstreamCall, send: SendHop<Response>): Promise<UpstreamAnswer<Response>>;
  async #request(call: UpstreamCall, send: SendHop<HopResponse> = this.#hopSender(call.kind)): Promise<UpstreamAnswer<HopResponse>> {
    const auth = call.anonymous ? this.#anonymousAuth : this.#auth;
    let credential = await auth.credentialFor(call.scope);
    for (let attempt = 1; ; attempt++) {
      const { response, url } = await sendFollowingRedirects(send, this.#hop(call, credential), call.what, { stopAtOtherOrigin: call.stopAtOtherOrigin });
      const crossOrigin = url.origin !== this.#baseUrl.origin;
      if (response.statusCode !== 401 || crossOrigin) return { response, crossOrigin };
      discardBody(response);
      auth.forget(credential);
      if (attempt === 2) throw new UnauthorizedError(`${call.what}: the upstream refused our credentials (401)`);
      this.#learn(auth, response.headers['www-authenticate']);
      const next = await auth.credentialFor(call.scope);
      // Offering the same Basic credentials again would only earn the same 401.
      if (next === undefined || (next.scheme === 'basic' && credential?.scheme === 'basic')) {
        throw new UnauthorizedError(`${call.what}: the upstream refused our credentials (401)`);
      }
      credential = next;
    }
  }

  /** Learns a challenge; the first untrusted realm is logged, since every pull fails until the config changes. */
  #learn(auth: UpstreamAuth, wwwAuthenticate: string | string[] | undefined): void {
    try {
      auth.learn(wwwAuthenticate);
    } catch (error) {
      if (error instanceof UntrustedRealmError && !this.#realmWarned) {
        this.#realmWarned = true;
        this.#log?.warn({ upstream: this.name, err: error }, 'upstream names a token realm that is not trusted: pulls through it fail until it is added to tokenRealms');
      }
      throw error;
    }
  }

  #hop(call: UpstreamCall, credential: Credential | undefined) {
    const headers: Record<string, string> = {};
    if (call.accept !== undefined) headers.accept = call.accept;
    if (credential !== undefined) headers.authorization = credential.header;
    return { method: call.method, url: call.url, headers, signal: call.signal };
  }

  /** One request, timed and reported to onResponse; undici sends it unless `transport` is given. */
  #hopSender(kind: UpstreamCallKind): SendHop;
  #hopSender<Response extends HopResponse>(kind: UpstreamCallKind, transport: SendHop<Response>): SendHop<Response>;
  #hopSender(kind: UpstreamCallKind, transport: SendHop<HopResponse> = (request: HopRequest, what: string): Promise<UpstreamResponse> => sendOnce(this.#dispatcher, request, what)): SendHop<HopResponse> {
    return async (request, what) => {
      const started = performance.now();
      const response = await transport(request, what);
      const info = {
        upstream: this.name, method: request.method, kind, status: response.statusCode, durationMs: performance.now() - started,
        headers: response.headers, crossOrigin: request.url.origin !== this.#baseUrl.origin,
      };
      try {
        this.#onResponse?.(info);
      } catch (error) {
        discardBody(response);
        throw error;
      }
      return response;
    };
  }
}

/** Asks `auth` for the token a pull from `repo` needs, for the fetch that follows to share; never throws. */
function prefetchToken(auth: UpstreamAuth, repo: string): void {
  auth.credentialFor(`repository:${repo}:pull`).catch(() => undefined);
}

/** A 401 from the registry itself, not a token realm the mirror would not trust: it refused the request. */
function isRegistryRefusal(error: unknown): boolean {
  return error instanceof UnauthorizedError && !(error instanceof UntrustedRealmError);
}

/** The upstream's answer to a fetch without credentials was 401 or 403: the repository is not public. */
function refusedAnonymously(call: UpstreamCall): AnonymousAccessRefusedError {
  return new AnonymousAccessRefusedError(`${call.what}: the upstream does not serve it without credentials`);
}
