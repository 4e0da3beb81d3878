/**
 * Per-request context that follows the request through every await into the pull-through and
 * upstream layers (AsyncLocalStorage), so time spent waiting for upstreams can be charged to the
 * request that caused it without passing a context object through every signature.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestScope {
  id: string;
  /** Sum of upstream response times (until headers) of calls made on this request's behalf. */
  upstreamMs: number;
}

const storage = new AsyncLocalStorage<RequestScope>();

export function runInRequestScope<T>(scope: RequestScope, work: () => T): T {
  return storage.run(scope, work);
}

/** Charges upstream time to the current request, if there is one (blob fills outlive theirs). */
export function addUpstreamTime(durationMs: number): void {
  const scope = storage.getStore();
  if (scope) scope.upstreamMs += durationMs;
}

/** The id of the request being handled (access-log.ts), for events that name it. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.id;
}
