/**
 * One request written as exactly these bytes on a connection of its own, and the answer read off
 * the socket: for requests no HTTP client sends (a request line that is not HTTP, conflicting
 * framing, hostile headers), which Node's parser or the mirror must answer by itself.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  status: number;
  /** Lower-cased names; the last value of a repeated header. */
  headers: Record<string, string>;
  /** As received (latin1), maybe cut short when the connection ended first. */
  body: string;
}

export interface RawExchangeOptions {
  /** The loopback address to connect from: failure limits count per client address. */
  from?: string;
  /** The answer so far is taken when nothing more comes; none by then is an error. Default 10 s. */
  timeoutMs?: number;
}

/** Resolves once the whole answer is in (its Content-Length, or the connection's end). */
export function rawExchange(base: string, bytes: string | Buffer, { from, timeoutMs = 10_000 }: RawExchangeOptions = {}): Promise<RawAnswer> {
  const { hostname, port } = new URL(base);
  const shown = JSON.stringify(Buffer.from(bytes).toString('latin1').slice(0, 200));
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ...(from ? { localAddress: from } : {}) });
    let text = '';
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const answer = parseAnswer(text);
      if (answer) resolve(answer);
      else reject(new Error(`no answer to ${shown}: ${JSON.stringify(text.slice(0, 200))}`));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const answer = parseAnswer(text);
      if (answer && isComplete(answer)) finish();
    });
    socket.on('close', finish);
    // The mirror closes a connection whose request it could not parse, maybe before reading all
    // of it (oversized headers): a reset after the answer arrived still leaves that answer.
    socket.on('error', (error) => (parseAnswer(text) ? finish() : (clearTimeout(timer), reject(error))));
    socket.write(bytes);
  });
}

function parseAnswer(text: string): RawAnswer | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!match) return undefined;
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(match[1]), headers, body: text.slice(end + 4) };
}

function isComplete(answer: RawAnswer): boolean {
  const declared = answer.headers['content-length'];
  return declared !== undefined && Buffer.byteLength(answer.body, 'latin1') >= Number(declared);
}
