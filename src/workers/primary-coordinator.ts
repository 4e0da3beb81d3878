/**
 * The primary's side of worker coordination: answers each worker's lease and slot requests from
 * one LeaseTable and one SlotTable, and when a worker exits (a crash included) ends its leases
 * and frees its slots at once, so the other workers take over without waiting for a TTL.
 */
import type { Worker } from 'node:cluster';
import { isCoordinationMessage, IPC_KIND, type RequestMessage } from './ipc-protocol.js';
import { LeaseTable } from './lease-table.js';
import { SlotTable } from './slot-table.js';

export class PrimaryCoordinator {
  readonly leases = new LeaseTable();
  readonly slots: SlotTable;

  constructor(maxConcurrent: number) {
    this.slots = new SlotTable(maxConcurrent);
  }

  /** Serves `worker` from now until it exits. */
  attach(worker: Worker): void {
    worker.on('message', (message: unknown) => {
      if (isCoordinationMessage(message) && 'op' in message) void this.#answer(worker, message);
    });
    worker.once('exit', () => {
      this.leases.dropHolder(worker.id);
      this.slots.dropHolder(worker.id);
    });
  }

  async #answer(worker: Worker, message: RequestMessage): Promise<void> {
    const reply = (result: unknown) => {
      if (worker.isConnected()) worker.send({ kind: IPC_KIND, id: message.id, result });
    };
    switch (message.op) {
      case 'lease.acquire':
        return reply(this.leases.acquire(message.key, message.value, message.ttlMs, worker.id));
      case 'lease.refresh':
        return reply(this.leases.refresh(message.key, message.value, message.ttlMs));
      case 'lease.release':
        return reply(this.leases.release(message.key, message.value, message.outcome));
      case 'lease.owner':
        return reply(this.leases.valueOf(message.key) ?? null);
      case 'lease.wait':
        return reply(await this.leases.wait(message.key, message.observed, message.timeoutMs));
      case 'slot.acquire':
        return this.slots.acquire(message.upstream, { holder: worker.id, id: message.id, grant: () => reply(message.id) });
      case 'slot.release':
        this.slots.release(message.upstream, worker.id, message.slot);
        return reply(true);
    }
  }
}
