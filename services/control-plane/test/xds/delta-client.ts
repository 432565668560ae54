import * as grpc from '@grpc/grpc-js';
import { grpcService, loadGrpcPackage, protoFiles } from '@switchyard/shared';

/** A DeltaDiscoveryResponse as @grpc/proto-loader decodes it. */
export interface DeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources: { name: string; version: string; resource: { type_url: string; value: Buffer } }[];
  removed_resources: string[];
}

export interface DeltaRequestFields {
  type_url: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: { code: number; message: string };
}

/**
 * A minimal delta xDS client (no gRPC library speaks delta): one ADS delta stream, requests
 * written as given, responses queued, and what the client holds tracked per type as Envoy
 * would (name → version, removed names dropped).
 */
export class DeltaClient {
  readonly held = new Map<string, Map<string, string>>();
  private readonly queue: DeltaResponse[] = [];
  private waiter: (() => void) | undefined;
  private readonly call: grpc.ClientDuplexStream<object, DeltaResponse>;
  private readonly client: grpc.Client;
  private sentNode = false;
  ended: grpc.StatusObject | undefined;

  constructor(
    port: number,
    private readonly nodeId: string,
    private readonly userAgent = 'envoy',
    channelOptions: grpc.ChannelOptions = {},
  ) {
    const Ads = grpcService(loadGrpcPackage([protoFiles.ads]), 'envoy.service.discovery.v3.AggregatedDiscoveryService');
    this.client = new Ads(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), channelOptions);
    this.call = (
      this.client as unknown as { DeltaAggregatedResources(): grpc.ClientDuplexStream<object, DeltaResponse> }
    ).DeltaAggregatedResources();
    this.call.on('data', (raw: Partial<DeltaResponse>) => {
      // proto-loader leaves empty repeated fields undefined.
      const response = { ...raw, resources: raw.resources ?? [], removed_resources: raw.removed_resources ?? [] } as DeltaResponse;
      const held = this.held.get(response.type_url) ?? new Map<string, string>();
      this.held.set(response.type_url, held);
      for (const r of response.resources) held.set(r.name, r.version);
      for (const name of response.removed_resources) held.delete(name);
      this.queue.push(response);
      this.waiter?.();
    });
    this.call.on('status', (status) => (this.ended = status));
    this.call.on('error', () => undefined);
  }

  send(fields: DeltaRequestFields): void {
    const node = this.sentNode ? undefined : { id: this.nodeId, cluster: 'test', user_agent_name: this.userAgent };
    this.sentNode = true;
    this.call.write({ node, ...fields });
  }

  ack(response: DeltaResponse): void {
    this.send({ type_url: response.type_url, response_nonce: response.nonce });
  }

  /** The next response, or an error if none arrives in time. */
  async next(timeoutMs = 5000): Promise<DeltaResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no delta response arrived');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
