import { TypeUrl, packAny, type XdsTypeUrl } from '@switchyard/shared';
import { register } from '@grpc/grpc-js-xds';
import { ClusterResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/cluster-resource-type.js';
import { EndpointResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/endpoint-resource-type.js';
import { ListenerResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/listener-resource-type.js';
import { RouteConfigurationResourceType } from '@grpc/grpc-js-xds/build/src/xds-resource-type/route-config-resource-type.js';
import type { XdsDecodeContext, XdsDecodeResult } from '@grpc/grpc-js-xds/build/src/xds-resource-type/xds-resource-type.js';
import type { ProtoObject } from '../../src/resources.js';

// Registers grpc-js-xds's HTTP filters and LB policies, which its validators consult.
register();

const decoders = {
  [TypeUrl.Listener]: ListenerResourceType.get(),
  [TypeUrl.RouteConfiguration]: RouteConfigurationResourceType.get(),
  [TypeUrl.Cluster]: ClusterResourceType.get(),
  [TypeUrl.ClusterLoadAssignment]: EndpointResourceType.get(),
} as const;

const context = {
  server: { serverUri: 'localhost:18000', channelCredentials: {}, serverFeatures: [] },
  bootstrap: { certificateProviders: {} },
} as unknown as XdsDecodeContext;

/** Decodes a resource exactly as a grpc-js-xds client would on the wire: `error` set means it would NACK. */
export function decodeAsGrpcClient(typeUrl: XdsTypeUrl, resource: ProtoObject): XdsDecodeResult {
  if (typeUrl === TypeUrl.Secret) throw new Error('gRPC clients are never sent secrets');
  if (!(typeUrl in decoders)) throw new Error(`gRPC clients are never sent ${typeUrl}`);
  const any = packAny(typeUrl, resource);
  return decoders[typeUrl as keyof typeof decoders].decode(context, { type_url: any.type_url, value: Buffer.from(any.value) });
}
