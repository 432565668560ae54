import { describe, expect, it } from 'vitest';
import { messages } from '@switchyard/shared';
import { fromLogLine, toEnvoyEvent } from '../src/envoy-events.js';

const now = 1_700_000_000_000;

describe('Envoy events', () => {
  it.each([
    {
      label: 'health check ejection, as the file sink writes it',
      line: '{"health_checker_type":"HTTP","host":{"socket_address":{"protocol":"TCP","address":"10.0.0.1","resolver_name":"","ipv4_compat":false,"port_value":8080}},"cluster_name":"sy_acme_api_blue","eject_unhealthy_event":{"failure_type":"ACTIVE"},"timestamp":"2024-05-01T10:00:00.250Z"}',
      want: {
        type: 'health_check',
        source: 'health_check_log',
        endpoint: { address: '10.0.0.1', port: 8080 },
        ts: Date.parse('2024-05-01T10:00:00.250Z'),
      },
    },
    {
      label: 'health check addition in camelCase JSON',
      line: '{"healthCheckerType":"TCP","host":{"socketAddress":{"address":"fd00::2","portValue":9000}},"clusterName":"sy_acme_api_green","addHealthyEvent":{"firstCheck":true}}',
      want: { type: 'health_check', revision: 'green', endpoint: { address: 'fd00::2', port: 9000 }, ts: now },
    },
    {
      label: 'outlier ejection',
      line: '{"type":"CONSECUTIVE_5XX","cluster_name":"sy_acme_api_blue","upstream_url":"10.0.0.7:8080","action":"EJECT","num_ejections":2,"enforced":true,"eject_consecutive_event":{},"timestamp":"2024-05-01T10:00:01Z"}',
      want: { type: 'outlier_detection', source: 'outlier_log', endpoint: { address: '10.0.0.7', port: 8080 } },
    },
    {
      label: 'outlier unejection of an IPv6 upstream',
      line: '{"type":"CONSECUTIVE_5XX","cluster_name":"sy_acme_api_blue","upstream_url":"[fd00::7]:8080","action":"UNEJECT","num_ejections":2,"enforced":true}',
      want: { type: 'outlier_detection', endpoint: { address: 'fd00::7', port: 8080 } },
    },
  ])('converts $label', ({ line, want }) => {
    const result = fromLogLine(line, 'envoy-1', now);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event).toMatchObject({ schemaVersion: 1, tenant: 'acme', service: 'api', revision: 'blue', node: 'envoy-1', ...want });
    expect(messages.envoyEvent.safeParse(result.event).success).toBe(true);
  });

  it.each([
    { label: 'half a line', line: '{"health_checker_type":"HTTP","cluster_na', reason: 'malformed' },
    { label: 'not an object', line: '[1,2]', reason: 'malformed' },
    { label: 'an unrelated object', line: '{"hello":"world"}', reason: 'unknown_type' },
    {
      label: 'a cluster that is not a Switchyard revision',
      line: '{"host":{},"cluster_name":"xds_cluster","add_healthy_event":{}}',
      reason: 'unknown_cluster',
    },
    { label: 'a health check event without an event', line: '{"host":{},"cluster_name":"sy_a_b_c"}', reason: 'malformed' },
    { label: 'no cluster name', line: '{"upstream_url":"10.0.0.1:80","action":"EJECT"}', reason: 'malformed' },
    { label: 'an outlier event without action', line: '{"upstream_url":"10.0.0.1:80","cluster_name":"sy_a_b_c"}', reason: 'malformed' },
  ])('drops $label', ({ line, reason }) => {
    expect(fromLogLine(line, null, now)).toMatchObject({ ok: false, reason });
  });

  it('reads decoded proto timestamps and keeps events with an unparsable address', () => {
    const result = toEnvoyEvent(
      { cluster_name: 'sy_a_b_c', upstream_url: 'somewhere', action: 'EJECT', timestamp: { seconds: '1700000001', nanos: 500_000_000 } },
      'outlier_detection',
      'event_reporting',
      'n',
      now,
    );
    expect(result).toMatchObject({ ok: true, event: { endpoint: null, ts: 1_700_000_001_500, source: 'event_reporting' } });
  });
});
