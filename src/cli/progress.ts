/**
 * Progress for the long-running commands (warm, export, import): live bars per task and overall
 * (bytes, rate, ETA) when the stream is a terminal, plain lines otherwise, so logs of CI jobs
 * and cron runs stay readable. Always on stderr: export may be writing the archive to stdout.
 */
import cliProgress from 'cli-progress';

export interface ProgressTask {
  /** More bytes became known to be needed (a manifest revealed more layers). */
  addTotal(bytes: number): void;
  advance(bytes: number): void;
  finish(outcome: string): void;
}

export interface Progress {
  task(label: string, totalBytes?: number): ProgressTask;
  /** A line of text that must not be torn by the bars. */
  log(line: string): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, interactive = stream.isTTY === true): Progress {
  return interactive ? barProgress(stream) : lineProgress(stream);
}

const FORMAT = '{label} {bar} {percentage}% | {done} / {size} | {rate} | ETA {eta_formatted}';

function barProgress(stream: NodeJS.WriteStream): Progress {
  const bars = new cliProgress.MultiBar({
    stream, format: FORMAT, hideCursor: true, clearOnComplete: false, autopadding: true, etaBuffer: 50, fps: 5, barsize: 24,
    barCompleteChar: '\u2588', barIncompleteChar: '\u2591',
  });
  const overall = new Meter(bars.create(0, 0, {}), 'total');
  return {
    task(label, totalBytes = 0) {
      const meter = new Meter(bars.create(totalBytes, 0, {}), label);
      meter.addTotal(0);
      overall.addTotal(totalBytes);
      return {
        addTotal(bytes) { meter.addTotal(bytes); overall.addTotal(bytes); },
        advance(bytes) { meter.advance(bytes); overall.advance(bytes); },
        finish(outcome) { meter.finish(outcome); },
      };
    },
    log: (line) => bars.log(`${line}\n`),
    stop: () => bars.stop(),
  };
}

/** One bar and the numbers shown on it. */
class Meter {
  private total: number;
  private done = 0;
  private readonly startedAt = Date.now();

  constructor(private readonly bar: cliProgress.SingleBar, private readonly label: string) {
    this.total = bar.getTotal();
  }

  addTotal(bytes: number): void {
    this.total += bytes;
    this.bar.setTotal(Math.max(this.total, 1));
    this.render();
  }

  advance(bytes: number): void {
    this.done += bytes;
    this.render();
  }

  finish(outcome: string): void {
    this.bar.setTotal(Math.max(this.done, 1));
    this.bar.update(Math.max(this.done, 1), this.payload(outcome));
    this.bar.stop();
  }

  private render(): void {
    this.bar.update(this.done, this.payload(''));
  }

  private payload(outcome: string) {
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const label = fit(outcome ? `${this.label} (${outcome})` : this.label, LABEL_WIDTH);
    return { label, done: formatBytes(this.done), size: formatBytes(this.total), rate: `${formatBytes(this.done / seconds)}/s` };
  }
}

function lineProgress(stream: NodeJS.WritableStream): Progress {
  return {
    task(label, totalBytes = 0) {
      let total = totalBytes;
      let done = 0;
      const startedAt = Date.now();
      return {
        addTotal(bytes) { total += bytes; },
        advance(bytes) { done += bytes; },
        finish(outcome) {
          const seconds = (Date.now() - startedAt) / 1000;
          stream.write(`${label}: ${outcome}, ${formatBytes(done)} of ${formatBytes(total)} in ${seconds.toFixed(1)} s (${formatBytes(done / Math.max(seconds, 0.001))}/s)\n`);
        },
      };
    },
    log: (line) => void stream.write(`${line}\n`),
    stop: () => {},
  };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

const LABEL_WIDTH = 48;

function fit(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `\u2026${text.slice(text.length - width + 1)}`;
}
