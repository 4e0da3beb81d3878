/**
 * HTTP Basic authentication of clients (RFC 7617) against the htpasswd file (`auth.htpasswd`).
 * A request without valid credentials gets 401 UNAUTHORIZED with
 * `WWW-Authenticate: Basic realm="registry-mirror"`; that challenge on `GET /v2/` is what makes
 * `docker login`, containerd and skopeo send their stored credentials (distribution-spec
 * "Determining Support", and distribution's htpasswd access controller does the same).
 *
 * Open without credentials: /healthz and /readyz, for probes that carry none. Everything else is
 * protected: /v2/ of course, and also /metrics, the status page at / and /api/status, since they
 * name the repositories being pulled (Prometheus and browsers both speak Basic auth).
 */
import type { MiddlewareHandler } from 'hono';
import { AuthenticationRequiredError, ClientRateLimitedError } from '../../domain/errors.js';
import { clientAddress } from '../client-address.js';

export interface CredentialVerifier {
  /**
   * `client` is the address failures are limited under; past the limits this throws
   * ClientRateLimitedError (429), and ServerBusyError (503) when checks queue up (htpasswd.ts).
   */
  verify(user: string, password: string, client: string): Promise<boolean>;
}

export interface ClientAuthOptions {
  /** How long a 429 for a client past its failure limits is held back; default 1 s. */
  limitedPauseMs?: number;
  /** 429s held back at once at most; beyond, they are answered at once. Default 1024. */
  maxPaused?: number;
}

export const CLIENT_AUTH_REALM = 'registry-mirror';
const OPEN_PATHS = new Set(['/healthz', '/readyz']);
const CHALLENGE = `Basic realm="${CLIENT_AUTH_REALM}", charset="UTF-8"`;

/** Sets `clientUser` on the context for authenticated requests. */
export function clientAuth(verifier: CredentialVerifier, options: ClientAuthOptions = {}): MiddlewareHandler {
  const pause = pauser(options.limitedPauseMs ?? 1_000, options.maxPaused ?? 1_024);
  return async function clientAuth(c, next) {
    if (OPEN_PATHS.has(c.req.path)) return next();
    const credentials = parseBasicAuthorization(c.req.header('authorization'));
    if (!credentials) throw new AuthenticationRequiredError('authentication required', CHALLENGE);
    let ok: boolean;
    try {
      ok = await verifier.verify(credentials.user, credentials.password, clientAddress(c));
    } catch (error) {
      if (error instanceof ClientRateLimitedError) await pause();
      throw error;
    }
    // Neither the user name nor the password is echoed: both may be someone's secret typo.
    if (!ok) throw new AuthenticationRequiredError('invalid username or password', CHALLENGE);
    c.set('clientUser', credentials.user);
    return next();
  };
}

/**
 * A client past its failure limits that keeps asking, ignoring Retry-After, is answered after a
 * pause. The 429 itself is cheap, but a flood of them on a few connections, each asked again
 * the moment it is answered, took the event loop from honest clients (issue 12 item 6); held
 * back, each such connection costs one answer per pause. Holding costs a timer and the open
 * socket, no CPU; past `maxPaused` held at once, answers go out at once.
 */
function pauser(pauseMs: number, maxPaused: number): () => Promise<void> {
  let paused = 0;
  return async function pauseLimitedClient() {
    if (paused >= maxPaused) return;
    paused += 1;
    try {
      await new Promise((resolve) => setTimeout(resolve, pauseMs).unref());
    } finally {
      paused -= 1;
    }
  };
}

export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  const match = header === undefined ? null : /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
