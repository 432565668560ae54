import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths whose values never reach the logs. */
const redactPaths = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'SWITCHYARD_ADMIN_TOKEN',
  '*.SWITCHYARD_ADMIN_TOKEN',
];

export function createLogger(service: string, level = 'info'): Logger {
  return pino({
    level,
    base: { service },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
