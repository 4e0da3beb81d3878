/**
 * The values middleware and routes hand each other on a request's context, typed once (hono's
 * ContextVariableMap, as its request-id middleware declares its own).
 */
import type { RepositoryTarget } from '../domain/target.js';
import type { BlobOrigin, ManifestOrigin } from '../pull-through/registry-service.js';

/** One request as the access log follows it (middleware/access-log.ts). */
export interface RequestScope {
  /** From a well-formed `X-Request-Id`, or made up. */
  id: string;
  /**
   * Sum of the upstream calls' times made on this request's behalf, charged by the services
   * (pull-through/charged-upstream.ts) through the routes' request options (request-options.ts).
   */
  upstreamMs: number;
}

declare module 'hono' {
  interface ContextVariableMap {
    /** The user an htpasswd check accepted (middleware/client-auth.ts); unset for anonymous clients. */
    clientUser: string;
    /** The repository a registry API request was routed to (routes/registry-api.ts). */
    target: RepositoryTarget;
    /** Where the answer's bytes came from, for metrics and the access log (metrics/answer-accounting.ts). */
    cacheResult: BlobOrigin | ManifestOrigin;
    /** Set by the access log, when there is one. */
    requestScope: RequestScope;
  }
}
