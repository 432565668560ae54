import type * as grpc from '@grpc/grpc-js';
import { unpackAny, type AnyMessage, type Logger } from '@switchyard/shared';
import { toEnvoyEvent, type EnvoyEventType } from './envoy-events.js';
import type { EnvoyEventSink } from './event-sink.js';

/**
 * `envoy.service.event_reporting.v3.EventReportingService/StreamEvents`: for Envoy builds
 * (and other clients) that report health-check and outlier-detection events over gRPC. The
 * node is only in the stream's first message; every message carries events packed in Any.
 */

interface StreamEventsRequest {
  identifier?: { node?: { id?: string } };
  events?: AnyMessage[];
}

const typesByUrl: Record<string, EnvoyEventType> = {
  'type.googleapis.com/envoy.data.core.v3.HealthCheckEvent': 'health_check',
  'type.googleapis.com/envoy.data.cluster.v3.OutlierDetectionEvent': 'outlier_detection',
};

export function eventReportingImplementation(deps: {
  sink: EnvoyEventSink;
  logger: Logger;
  now: () => number;
}): grpc.UntypedServiceImplementation {
  return {
    StreamEvents: (call: grpc.ServerDuplexStream<StreamEventsRequest, unknown>) => {
      let node: string | null = null;
      const warned = new Set<string>();
      const drop = (reason: string, detail: string) => {
        deps.sink.drop('event_reporting', reason);
        if (warned.has(reason)) return;
        warned.add(reason);
        deps.logger.warn({ node, reason, detail }, 'Envoy event dropped (further ones on this stream are only counted)');
      };
      call.on('data', (request: StreamEventsRequest) => {
        node = request.identifier?.node?.id || node;
        const events = request.events ?? [];
        if (events.length === 0) drop('malformed', 'StreamEventsRequest without events');
        for (const any of events) {
          const type = typesByUrl[any.type_url];
          if (type === undefined) {
            drop('unknown_type', `events of type ${any.type_url} are not handled`);
            continue;
          }
          let detail: Record<string, unknown>;
          try {
            detail = unpackAny(any);
          } catch (err) {
            drop('malformed', `cannot decode ${any.type_url}: ${String(err)}`);
            continue;
          }
          const conversion = toEnvoyEvent(detail, type, 'event_reporting', node, deps.now());
          if (conversion.ok) deps.sink.publish(conversion.event);
          else drop(conversion.reason, conversion.detail);
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  };
}
