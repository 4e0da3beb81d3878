/**
 * Follows redirects by hand (undici 7 has no built-in redirect option), so that credentials are
 * under our control: Authorization is dropped as soon as a hop leaves the current origin and is
 * never added back (undici's redirect handler and distribution's proxy do the same), and only
 * http(s) targets are dialled. Blob GETs on Docker Hub and most registries redirect to a CDN.
 */
import { UpstreamBadResponseError } from '../domain/errors.js';
import { discardBody, type HopRequest, type HopResponse, type SendHop } from './http-dispatcher.js';
import { headerValue } from './upstream-failures.js';

export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface FinalResponse<Response extends HopResponse> {
  response: Response;
  /** Where the final response came from. */
  url: URL;
}

export interface RedirectOptions {
  /**
   * Do not follow a redirect to another origin: answer with the redirect itself, and its target
   * as `url`. For questions the redirect answers (an access probe: a registry sends to its
   * storage only clients it let in), which need not cost a request to the target.
   */
  stopAtOtherOrigin?: boolean;
}

export async function sendFollowingRedirects<Response extends HopResponse>(send: SendHop<Response>, first: HopRequest, what: string, options: RedirectOptions = {}): Promise<FinalResponse<Response>> {
  let request = first;
  for (let hop = 0; ; hop++) {
    const response = await send(request, what);
    const location = headerValue(response.headers, 'location');
    if (!REDIRECT_STATUSES.has(response.statusCode) || location === undefined) return { response, url: request.url };
    discardBody(response);
    if (hop === MAX_REDIRECTS) throw new UpstreamBadResponseError(`${what}: more than ${MAX_REDIRECTS} redirects`);
    const target = resolveLocation(location, request.url, what);
    if (options.stopAtOtherOrigin && target.origin !== request.url.origin) return { response, url: target };
    request = nextHop(request, target);
  }
}

function nextHop(previous: HopRequest, url: URL): HopRequest {
  if (url.origin === previous.url.origin) return { ...previous, url };
  const { authorization: _dropped, ...headers } = previous.headers;
  return { ...previous, url, headers };
}

/** Relative references resolve against the current URL (RFC 9110 section 10.2.2). */
function resolveLocation(location: string, base: URL, what: string): URL {
  let url: URL;
  try {
    url = new URL(location, base);
  } catch {
    throw new UpstreamBadResponseError(`${what}: the upstream redirected to an invalid Location`);
  }
  // Name the scheme only: a redirect target may be a signed URL.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UpstreamBadResponseError(`${what}: refusing to follow a redirect to a ${url.protocol} URL`);
  }
  return url;
}
