/**
 * JSON logs, one object per line (pino). Credentials never reach a log line: upstream errors
 * are built without them, and the fields that could hold one are redacted as a second line of
 * defence. The paths are explicit: pino's wildcard redaction walks every logged object and cost
 * about 8% of the warm manifest path in a CPU profile, for fields that never appear there.
 */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { service: 'registry-mirror' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', 'token', 'authorization', 'headers.authorization', 'config.password', 'upstream.password', 'err.headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
