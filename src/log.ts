/**
 * JSON logs, one object per line (pino). Credentials never reach a log line: the known secret
 * fields are redacted wherever they appear, and upstream errors are built without them.
 */
import { pino, type Logger } from 'pino';

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino(
    {
      level,
      base: { service: 'registry-mirror' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
