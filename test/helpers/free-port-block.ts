/**
 * A block of consecutive TCP ports that are free on 127.0.0.1 right now, for daemons that take a
 * port range rather than port 0 (Ceph's OSD binds inside `ms bind port min..max`).
 *
 * Blocks come from 20000-32767: below Linux's default ephemeral range (32768-60999, where
 * outgoing connections take their ports) and clear of the ports reserved for the shared test bed
 * (5100-5199, 6390, 6789, 7480). Every port is checked by binding it; a daemon that still loses a
 * race is handled by its launcher's retry.
 */
import { createServer } from 'node:net';

const LOW = 20_000;
const HIGH = 32_767;

export async function pickFreePortBlock(count: number, attempts = 50): Promise<number[]> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - LOW - count));
    const ports = Array.from({ length: count }, (_, index) => base + index);
    if (await allFree(ports)) return ports;
  }
  throw new Error(`no ${count} consecutive free ports on 127.0.0.1 between ${LOW} and ${HIGH}`);
}

async function allFree(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    if (!(await isFree(port))) return false;
  }
  return true;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}
