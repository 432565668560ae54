import { pino, type DestinationStream, type Logger } from 'pino';

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
  // TLS private keys, wherever a spec, record, request or IR lands in a log line.
  'privateKey',
  '*.privateKey',
  '*.*.privateKey',
  '*.*.*.privateKey',
  '*.*.*.*.privateKey',
];

export function createLogger(service: string, level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service },
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
