/**
 * The upstream concurrency bound of `serve --workers N` (`fetch.maxConcurrent` per upstream for
 * the whole machine, as RedisSemaphore gives a fleet), kept by the primary: a worker asks for a
 * slot and is granted one now or in its turn, first come first served; it gives the slot back
 * when its fetch ends. A worker that exits gives back its slots and leaves the queue.
 */
export interface SlotRequest {
  holder: number;
  id: number;
  grant(): void;
}

interface Upstream {
  active: Array<{ holder: number; id: number }>;
  queue: SlotRequest[];
}

export class SlotTable {
  readonly #upstreams = new Map<string, Upstream>();

  constructor(private readonly maxConcurrent: number) {}

  acquire(upstream: string, request: SlotRequest): void {
    const state = this.#state(upstream);
    if (state.active.length < this.maxConcurrent) {
      state.active.push({ holder: request.holder, id: request.id });
      request.grant();
    } else {
      state.queue.push(request);
    }
  }

  release(upstream: string, holder: number, id: number): void {
    const state = this.#upstreams.get(upstream);
    if (!state) return;
    const index = state.active.findIndex((slot) => slot.holder === holder && slot.id === id);
    if (index !== -1) state.active.splice(index, 1);
    else state.queue = state.queue.filter((request) => request.holder !== holder || request.id !== id);
    this.#grantWaiting(state);
  }

  dropHolder(holder: number): void {
    for (const state of this.#upstreams.values()) {
      state.active = state.active.filter((slot) => slot.holder !== holder);
      state.queue = state.queue.filter((request) => request.holder !== holder);
      this.#grantWaiting(state);
    }
  }

  activeCount(upstream: string): number {
    return this.#upstreams.get(upstream)?.active.length ?? 0;
  }

  #grantWaiting(state: Upstream): void {
    while (state.active.length < this.maxConcurrent && state.queue.length > 0) {
      const next = state.queue.shift()!;
      state.active.push({ holder: next.holder, id: next.id });
      next.grant();
    }
  }

  #state(upstream: string): Upstream {
    let state = this.#upstreams.get(upstream);
    if (!state) {
      state = { active: [], queue: [] };
      this.#upstreams.set(upstream, state);
    }
    return state;
  }
}
