/**
 * What the one-shot commands (warm, export, import) share: the config they name, a logger on
 * stderr (stdout may carry an archive), and a mirror built by the same composition as `serve`.
 * They may run beside a server on the same cache: their temp files are their own, and they leave
 * reconciling the blob index to the server.
 */
import type { Logger } from 'pino';
import { composeMirror, type Mirror } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { createLogger } from '../log.js';

export interface ToolContext {
  config: MirrorConfig;
  log: Logger;
  mirror: Mirror;
}

export async function openTool(configFile: string | undefined, overrides: Partial<Pick<MirrorConfig, 'offline'>> = {}): Promise<ToolContext> {
  const config = { ...(await loadConfig(configFile)), ...overrides };
  // The tools report through their progress display; only warnings and errors go to the log.
  const level = ['trace', 'debug'].includes(config.log.level) ? config.log.level : 'warn';
  const log = createLogger(level, process.stderr);
  const mirror = await composeMirror(config, log, { reconcile: 'skip', prefetch: false });
  return { config, log, mirror };
}

/** Renders rows as a left-aligned text table with a header line. */
export function formatTable(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((row) => row.map(printable));
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** C0 and C1 control characters and DEL: in a cell they would drive the terminal. */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/** A cell's text with control characters written as `\uXXXX` (cells come from archives and upstreams). */
function printable(cell: string): string {
  return cell.replace(CONTROL_CHARACTERS, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export { UsageError } from './usage-error.js';
