import type { Logger } from '@switchyard/shared';
import { fromLogLine } from './envoy-events.js';
import type { EnvoyEventSink } from './event-sink.js';
import type { EventStreamerMetrics } from './metrics.js';
import { FileTailer, type TailerOptions } from './tailer.js';

/**
 * Tailer mode: follows the JSON-lines files Envoy writes (health-check event sink `file`,
 * outlier detection `event_log_path`) and publishes each event like EventReportingService does.
 */
export function startLogTailing(options: {
  files: string[];
  sink: EnvoyEventSink;
  metrics: EventStreamerMetrics;
  logger: Logger;
  /** The Envoy these files belong to, named in every event. */
  node: string | null;
  pollMs?: number;
  now?: () => number;
  tailer?: TailerOptions;
}): { tailers: FileTailer[]; pollAll(): Promise<void>; stop(): Promise<void> } {
  const { sink, logger } = options;
  const now = options.now ?? Date.now;
  const tailers = options.files.map((path) => {
    const warned = new Set<string>();
    const warnOnce = (reason: string, detail: string) => {
      if (warned.has(reason)) return;
      warned.add(reason);
      logger.warn({ file: path, reason, detail }, 'event log line dropped (further ones from this file are only counted)');
    };
    return new FileTailer(
      path,
      {
        line: (line) => {
          const conversion = fromLogLine(line, options.node, now());
          if (conversion.ok) {
            sink.publish(conversion.event);
            return;
          }
          sink.drop('log_file', conversion.reason);
          warnOnce(conversion.reason, conversion.detail);
        },
        dropped: (reason) => {
          sink.drop('log_file', reason);
          warnOnce(reason, 'unterminated line at rotation or truncation, or longer than the limit');
        },
      },
      options.tailer,
    );
  });
  options.metrics.tailedFiles.set(tailers.length);
  const pollAll = async () => {
    await Promise.all(
      tailers.map((t) => t.poll().catch((err: unknown) => logger.warn({ err, file: t.path }, 'reading event log failed; retrying'))),
    );
  };
  const timer = setInterval(() => void pollAll(), options.pollMs ?? 250);
  if (tailers.length > 0) logger.info({ files: options.files }, 'following Envoy event logs');
  return {
    tailers,
    pollAll,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(tailers.map((t) => t.close()));
      options.metrics.tailedFiles.set(0);
    },
  };
}
