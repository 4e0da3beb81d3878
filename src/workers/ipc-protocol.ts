/**
 * The messages between the workers of `serve --workers N` and their primary, over the IPC channel
 * Node's cluster module opens (`process.send` / `worker.send`): leases (lease-table.ts) and
 * upstream slots (slot-table.ts), each request answered once by a reply with the same id.
 */
import type { LeaseOutcome } from '../coordination/redis-leases.js';

export const IPC_KIND = 'registry-mirror:coordination';

export type CoordinationRequest =
  | { op: 'lease.acquire'; key: string; value: string; ttlMs: number }
  | { op: 'lease.refresh'; key: string; value: string; ttlMs: number }
  | { op: 'lease.release'; key: string; value: string; outcome: LeaseOutcome }
  | { op: 'lease.owner'; key: string }
  | { op: 'lease.wait'; key: string; observed: string; timeoutMs?: number }
  | { op: 'slot.acquire'; upstream: string }
  | { op: 'slot.release'; upstream: string; slot: number };

export type RequestMessage = { kind: typeof IPC_KIND; id: number } & CoordinationRequest;

export interface ReplyMessage {
  kind: typeof IPC_KIND;
  id: number;
  result: unknown;
}

export function isCoordinationMessage(message: unknown): message is RequestMessage | ReplyMessage {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === IPC_KIND && typeof (message as { id?: unknown }).id === 'number';
}
