import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcService, loadGrpcPackage, packAny, protoFiles, publishDurable } from '@switchyard/shared';
import { EnvoyEventSink } from '../src/event-sink.js';
import { eventReportingImplementation } from '../src/event-reporting.js';
import { startLogTailing } from '../src/log-tailing.js';
import { eventStreamerMetrics } from '../src/metrics.js';
import { collect, eventually, logger, metricValue, startBus, startGrpc, type Bus } from './harness.js';

const EventReporting = grpcService(loadGrpcPackage([protoFiles.eventReporting]), 'envoy.service.event_reporting.v3.EventReportingService');

describe('Envoy events to the bus', () => {
  let bus: Bus;
  let sink: EnvoyEventSink;

  beforeAll(async () => {
    bus = await startBus();
    const metrics = eventStreamerMetrics(bus.observability.registry);
    sink = new EnvoyEventSink({ publish: (event) => publishDurable(bus.js, 'envoy', event), metrics, logger });
  });
  afterAll(async () => {
    await bus?.close();
  });

  const dropped = (source: string, reason: string) =>
    metricValue(bus, 'switchyard_event_streamer_envoy_events_dropped_total', { source, reason });

  it('publishes HealthCheckEvents and OutlierDetectionEvents sent over EventReportingService, dropping bad ones', async () => {
    const server = await startGrpc((s) =>
      s.addService(EventReporting.service, eventReportingImplementation({ sink, logger, now: () => 1_700_000_000_000 })),
    );
    const events = collect(bus, 'envoy', 'switchyard.envoy.acme.>');
    const client = new EventReporting(server.address, grpc.credentials.createInsecure());
    const call = (client as unknown as { StreamEvents: () => grpc.ClientDuplexStream<unknown, unknown> }).StreamEvents();
    call.on('error', () => undefined);
    const unknownTypeBefore = await dropped('event_reporting', 'unknown_type');
    const unknownClusterBefore = await dropped('event_reporting', 'unknown_cluster');
    const malformedBefore = await dropped('event_reporting', 'malformed');
    call.write({
      identifier: { node: { id: 'envoy-7', cluster: 'edge' } },
      events: [
        packAny('envoy.data.core.v3.HealthCheckEvent', {
          health_checker_type: 'HTTP',
          host: { socket_address: { address: '10.0.0.1', port_value: 8080 } },
          cluster_name: 'sy_acme_api_blue',
          health_check_failure_event: { failure_type: 'ACTIVE', first_check: false },
          timestamp: { seconds: 1_700_000_123, nanos: 0 },
        }),
        packAny('envoy.data.cluster.v3.OutlierDetectionEvent', {
          type: 'CONSECUTIVE_5XX',
          cluster_name: 'sy_acme_api_blue',
          upstream_url: '10.0.0.2:8080',
          action: 'EJECT',
          num_ejections: 1,
          enforced: true,
          eject_consecutive_event: {},
        }),
        packAny('envoy.config.core.v3.Node', { id: 'not-an-event' }),
        packAny('envoy.data.cluster.v3.OutlierDetectionEvent', {
          cluster_name: 'other_cluster',
          upstream_url: '1.2.3.4:80',
          action: 'EJECT',
        }),
        { type_url: 'type.googleapis.com/envoy.data.core.v3.HealthCheckEvent', value: Buffer.from([0xff, 0xff, 0xff]) },
      ],
    });
    // Later messages carry no identifier: the node of the first still applies.
    call.write({
      events: [
        packAny('envoy.data.core.v3.HealthCheckEvent', {
          host: { socket_address: { address: '10.0.0.1', port_value: 8080 } },
          cluster_name: 'sy_acme_api_blue',
          add_healthy_event: { first_check: false },
        }),
      ],
    });
    await eventually(() => events.items.length === 3, 10_000, 'three events published');
    const [failure, ejection, healthy] = events.items;
    expect(failure).toMatchObject({
      tenant: 'acme',
      service: 'api',
      revision: 'blue',
      source: 'event_reporting',
      type: 'health_check',
      node: 'envoy-7',
      endpoint: { address: '10.0.0.1', port: 8080 },
      ts: 1_700_000_123_000,
      detail: { health_check_failure_event: { failure_type: 'ACTIVE' } },
    });
    expect(ejection).toMatchObject({ type: 'outlier_detection', endpoint: { address: '10.0.0.2', port: 8080 }, ts: 1_700_000_000_000 });
    expect(healthy).toMatchObject({ node: 'envoy-7', detail: { add_healthy_event: {} } });
    await eventually(async () => (await dropped('event_reporting', 'unknown_type')) === unknownTypeBefore + 1);
    await eventually(async () => (await dropped('event_reporting', 'unknown_cluster')) === unknownClusterBefore + 1);
    await eventually(async () => (await dropped('event_reporting', 'malformed')) === malformedBefore + 1);
    call.end();
    client.close();
    events.stop();
    await server.stop();
  });

  it('tails Envoy event log files and publishes their events, counting half-written and bad lines', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-events-'));
    const healthLog = join(dir, 'health_check_events.log');
    const outlierLog = join(dir, 'outlier_events.log');
    await writeFile(healthLog, '{"stale":"written before the tailer started"}\n');
    const events = collect(bus, 'envoy', 'switchyard.envoy.beta.>');
    const tailing = startLogTailing({
      files: [healthLog, outlierLog],
      sink,
      metrics: eventStreamerMetrics(bus.observability.registry),
      logger,
      node: 'envoy-side',
      pollMs: 60_000,
    });
    await tailing.pollAll();
    await appendFile(
      healthLog,
      '{"health_checker_type":"TCP","host":{"socket_address":{"address":"10.5.0.1","port_value":7000}},"cluster_name":"sy_beta_db_r1","eject_unhealthy_event":{"failure_type":"ACTIVE"},"timestamp":"2024-05-01T10:00:00Z"}\nnot json at all\n{"health_checker_type":"TCP","host"',
    );
    await writeFile(
      outlierLog,
      '{"type":"CONSECUTIVE_5XX","cluster_name":"sy_beta_db_r1","upstream_url":"10.5.0.2:7000","action":"EJECT","num_ejections":1,"enforced":true}\n',
    );
    const malformedBefore = await dropped('log_file', 'malformed');
    await tailing.pollAll();
    await eventually(() => events.items.length === 2, 10_000, 'two events from the logs');
    expect(events.items.map((e) => `${e.source}:${e.type}:${e.endpoint?.address}`).sort()).toEqual([
      'health_check_log:health_check:10.5.0.1',
      'outlier_log:outlier_detection:10.5.0.2',
    ]);
    expect(events.items.every((e) => e.node === 'envoy-side')).toBe(true);
    expect(await dropped('log_file', 'malformed')).toBe(malformedBefore + 1);
    // The half-written line is dropped when the file is truncated under it.
    const partialBefore = await dropped('log_file', 'partial_line');
    await writeFile(healthLog, '');
    await tailing.pollAll();
    expect(await dropped('log_file', 'partial_line')).toBe(partialBefore + 1);
    await tailing.stop();
    events.stop();
    await rm(dir, { recursive: true, force: true });
  });
});
