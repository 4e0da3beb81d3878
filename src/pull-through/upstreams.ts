/**
 * Which upstream a proxied repository is asked through, if any: the one place where "offline"
 * and "no such upstream" are decided. Offline (config `offline`, `serve --offline`) there is no
 * upstream for anything: cached tags are served whatever their age and what is not cached is
 * unknown. Every pull-through service asks here instead of reading the config itself.
 */
import type { ProxiedTarget } from '../domain/target.js';
import { chargedUpstream, type UpstreamTimeAccount } from './charged-upstream.js';
import type { UpstreamPort } from './upstream-port.js';

export class Upstreams {
  constructor(private readonly ports: ReadonlyMap<string, UpstreamPort>, readonly offline: boolean) {}

  /**
   * The upstream for `target`; undefined offline or when none by that name is configured. Calls
   * through it add their time to `chargeTo`, the client request they are made for, if given.
   */
  for(target: ProxiedTarget, chargeTo?: UpstreamTimeAccount): UpstreamPort | undefined {
    const upstream = this.offline ? undefined : this.ports.get(target.upstream);
    return upstream && chargeTo ? chargedUpstream(upstream, chargeTo) : upstream;
  }

  /** Like `for`, but throws `notFound(reason)` where there is none; `reason` completes "… is not cached and …". */
  require(target: ProxiedTarget, notFound: (reason: string) => Error, chargeTo?: UpstreamTimeAccount): UpstreamPort {
    const upstream = this.for(target, chargeTo);
    if (upstream) return upstream;
    throw notFound(this.offline ? 'this mirror is offline' : `no upstream ${target.upstream} is configured`);
  }
}
