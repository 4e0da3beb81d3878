/**
 * A worker's side of the IPC channel to its primary (ipc-protocol.ts): each request gets an id
 * and resolves with the primary's reply. A worker without a primary (the channel closed) gets
 * CoordinationUnavailableError, which the flights answer by working alone; in practice a worker
 * whose primary died exits at once (Node's cluster module does that on 'disconnect').
 */
import { CoordinationUnavailableError } from '../coordination/coordination-errors.js';
import { isCoordinationMessage, IPC_KIND, type CoordinationRequest } from './ipc-protocol.js';

type Sender = Pick<NodeJS.Process, 'send' | 'connected' | 'on' | 'off'>;

export class IpcChannel {
  #next = 1;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  readonly #onMessage = (message: unknown) => {
    if (!isCoordinationMessage(message) || !('result' in message)) return;
    const pending = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    pending?.resolve(message.result);
  };

  constructor(private readonly channel: Sender = process) {
    channel.on('message', this.#onMessage);
  }

  /** Sends `request`; resolves with the reply. `onId` learns the request's id (a slot's id) before it is sent. */
  request<T>(request: CoordinationRequest, onId?: (id: number) => void): Promise<T> {
    const id = this.#next++;
    onId?.(id);
    if (!this.channel.send || !this.channel.connected) return Promise.reject(new CoordinationUnavailableError('the primary process is gone'));
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.channel.send!({ kind: IPC_KIND, id, ...request }, undefined, {}, (error: Error | null) => {
        if (!error) return;
        this.#pending.delete(id);
        reject(new CoordinationUnavailableError(`the primary process cannot be reached: ${error.message}`, error));
      });
    });
  }

  close(): void {
    this.channel.off('message', this.#onMessage);
    const gone = new CoordinationUnavailableError('the worker is shutting down');
    for (const pending of this.#pending.values()) pending.reject(gone);
    this.#pending.clear();
  }
}
