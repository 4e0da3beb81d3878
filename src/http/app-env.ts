/**
 * The values middleware and routes hand each other on a request's context, typed once (hono's
 * ContextVariableMap, as its request-id middleware declares its own).
 */
import type { RepositoryTarget } from '../domain/target.js';
import type { BlobOrigin, ManifestOrigin } from '../pull-through/registry-service.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** The user an htpasswd check accepted (middleware/client-auth.ts); unset for anonymous clients. */
    clientUser: string;
    /** The repository a registry API request was routed to (routes/registry-api.ts). */
    target: RepositoryTarget;
    /** Where the answer's bytes came from, for metrics and the access log (metrics/answer-accounting.ts). */
    cacheResult: BlobOrigin | ManifestOrigin;
  }
}

export {};
