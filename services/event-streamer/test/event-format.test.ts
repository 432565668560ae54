import { describe, expect, it } from 'vitest';
import { formatEventJson, formatEventLine, type WatchedEvent } from '../src/event-format.js';
import { sampleEvents } from './fixtures.js';

function watched(kind: string, payload: Record<string, unknown>): WatchedEvent {
  return {
    kind,
    stream: kind === 'health' ? 'SWITCHYARD_HEALTH' : 'SWITCHYARD_EVENTS',
    sequence: 42,
    subject: `switchyard.${kind}`,
    tenant: String(payload.tenant ?? ''),
    service: String(payload.service ?? ''),
    // Only revision-scoped kinds have a revision in their subject (deploy payloads name one all the same).
    revision: ['health', 'scale', 'instance', 'envoy'].includes(kind) ? String(payload.revision ?? '') : '',
    ts: Date.UTC(2024, 4, 1, 10, 0, 0),
    payload,
  };
}

describe('syctl events line format', () => {
  it.each([
    {
      kind: 'health',
      payload: {
        ...sampleEvents.health('acme', 'api', 'blue'),
        state: 'unhealthy',
        previous: 'healthy',
        reason: '2 of 3 checkers report unhealthy',
      },
      want: '2024-05-01T10:00:00.000Z  health    acme/api/blue             10.0.0.1:80 healthy -> unhealthy: 2 of 3 checkers report unhealthy',
    },
    {
      kind: 'scale',
      payload: { ...sampleEvents.scale('acme', 'api', 'blue'), panic: true, limitedBy: 'maxScaleUpRate' },
      want: '2024-05-01T10:00:00.000Z  scale     acme/api/blue             1 -> 3 instances (panic), limited by maxScaleUpRate: stable window',
    },
    {
      kind: 'instance',
      payload: { ...sampleEvents.instance('acme', 'api', 'blue'), event: 'exited', detail: 'exit code 1' },
      want: '2024-05-01T10:00:00.000Z  instance  acme/api/blue             i-1 exited: exit code 1',
    },
    {
      kind: 'status',
      payload: sampleEvents.status('acme', 'api'),
      want: '2024-05-01T10:00:00.000Z  status    acme/api                  applied spec #3: revisions blue; traffic blue 100%',
    },
    {
      kind: 'deploy',
      payload: sampleEvents.deploy('acme', 'api'),
      want: '2024-05-01T10:00:00.000Z  deploy    acme/api                  shifting green (from blue): traffic blue 50%, green 50%, 2/2 healthy, errors 0.0% - step 2 of 3',
    },
    {
      kind: 'envoy',
      payload: {
        schemaVersion: 1,
        tenant: 'acme',
        service: 'api',
        revision: 'blue',
        source: 'outlier_log',
        type: 'outlier_detection',
        node: 'envoy-1',
        endpoint: { address: '10.0.0.7', port: 8080 },
        detail: { action: 'EJECT', type: 'CONSECUTIVE_5XX' },
        ts: 1,
      },
      want: '2024-05-01T10:00:00.000Z  envoy     acme/api/blue             outlier_detection EJECT CONSECUTIVE_5XX 10.0.0.7:8080 (node envoy-1)',
    },
    {
      kind: 'xds',
      payload: {
        schemaVersion: 1,
        event: 'nack',
        nodeId: 'envoy-1',
        cluster: '',
        typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
        version: '7',
        error: 'bad cluster',
        ts: 1,
      },
      want: '2024-05-01T10:00:00.000Z  xds       -                         nack node envoy-1 Cluster v7: bad cluster',
    },
    {
      kind: 'status',
      payload: { not: 'a status event' },
      want: '2024-05-01T10:00:00.000Z  status    -                         {"not":"a status event"}',
    },
  ])('formats $kind: $want', ({ kind, payload, want }) => {
    expect(formatEventLine(watched(kind, payload as Record<string, unknown>))).toBe(want);
  });

  it('prints one JSON object per line with -o json', () => {
    const event = watched('status', sampleEvents.status('acme', 'api') as unknown as Record<string, unknown>);
    const line = formatEventJson(event);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual(event);
  });
});
