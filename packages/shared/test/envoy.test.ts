import { describe, expect, it } from 'vitest';
import { checkMessage, packAny, unpackAny, TypeUrl } from '../src/envoy.js';

describe('Envoy protos', () => {
  const cluster = {
    name: 'sy_acme_api_blue',
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    connect_timeout: { seconds: 1, nanos: 0 },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
  };

  it('round-trips a cluster with a nested Any through bytes', () => {
    const any = packAny(TypeUrl.Cluster, cluster);
    expect(any.type_url).toBe(TypeUrl.Cluster);
    const decoded = unpackAny(any);
    expect(decoded).toMatchObject({ name: 'sy_acme_api_blue', type: 'EDS' });
    const options = (decoded.typed_extension_protocol_options as Record<string, Record<string, unknown>>)[
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
    ];
    expect(options?.['@type']).toBe('type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
  });

  it('accepts a valid message and reports unknown fields and bad enums with their path', () => {
    expect(checkMessage(TypeUrl.Cluster, cluster)).toEqual([]);
    const errors = checkMessage(TypeUrl.Cluster, { ...cluster, type: 'NOPE', eds_cluster_config: { eds_confg: {} } });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringContaining('type: "NOPE"'),
        expect.stringContaining('eds_cluster_config.eds_confg: unknown field'),
      ]),
    );
  });
});
