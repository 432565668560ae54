import * as grpc from '@grpc/grpc-js';
import { grpcService, loadGrpcPackage, protoFiles } from '@switchyard/shared';

/**
 * An HDS client that speaks `envoy.service.health.v3.HealthDiscoveryService` the way Envoy's
 * HdsDelegate does: it opens StreamHealthCheck, sends a HealthCheckRequest with its node and
 * capabilities, applies every HealthCheckSpecifier it receives, and sends
 * EndpointHealthResponses grouped by cluster and locality (plus the deprecated flat list, as
 * Envoy still does). The results are whatever the caller reports: tests decide health
 * directly, {@link HdsProber} runs real TCP/HTTP checks.
 */

export type EnvoyHealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'TIMEOUT' | 'DEGRADED' | 'DRAINING' | 'UNKNOWN';

export interface AssignedEndpoint {
  cluster: string;
  address: string;
  port: number;
}

export interface ClusterCheck {
  cluster: string;
  /** The HealthCheck as sent (proto-JSON object form, durations as {seconds, nanos}). */
  healthCheck: Record<string, unknown>;
  endpoints: { address: string; port: number }[];
}

export interface HdsClientOptions {
  nodeId: string;
  /** Capability.health_check_protocols; Envoy announces HTTP, TCP and REDIS. */
  protocols?: string[];
  cluster?: string;
  /** Called after each specifier is applied. */
  onSpecifier?: (client: HdsClient) => void;
}

interface SpecifierMessage {
  cluster_health_checks?: {
    cluster_name?: string;
    health_checks?: Record<string, unknown>[];
    locality_endpoints?: { endpoints?: { address?: { socket_address?: { address?: string; port_value?: number } } }[] }[];
  }[];
  interval?: { seconds?: string | number; nanos?: number };
}

let clientConstructor: grpc.ServiceClientConstructor | undefined;

function hdsClientConstructor(): grpc.ServiceClientConstructor {
  clientConstructor ??= grpcService(loadGrpcPackage([protoFiles.hds]), 'envoy.service.health.v3.HealthDiscoveryService');
  return clientConstructor;
}

export class HdsClient {
  /** How many specifiers arrived; the client keeps only the latest, as Envoy does. */
  received = 0;
  private latest: SpecifierMessage | undefined;
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<Record<string, unknown>, SpecifierMessage>;
  private listeners: (() => void)[] = [];
  private ended: grpc.StatusObject | undefined;

  constructor(
    address: string,
    readonly options: HdsClientOptions,
    channelOptions: grpc.ChannelOptions = {},
  ) {
    const Client = hdsClientConstructor();
    this.client = new Client(address, grpc.credentials.createInsecure(), channelOptions);
    this.call = (this.client as unknown as { StreamHealthCheck: () => HdsClient['call'] }).StreamHealthCheck();
    this.call.on('data', (specifier: SpecifierMessage) => {
      this.latest = specifier;
      this.received++;
      this.options.onSpecifier?.(this);
      this.notify();
    });
    this.call.on('status', (status: grpc.StatusObject) => {
      this.ended = status;
      this.notify();
    });
    this.call.on('error', () => undefined);
    this.call.write({
      health_check_request: {
        node: { id: options.nodeId, cluster: options.cluster ?? 'switchyard-test' },
        capability: { health_check_protocols: options.protocols ?? ['HTTP', 'TCP', 'REDIS'] },
      },
    });
  }

  /** The status the server ended the stream with, if it did. */
  get status(): grpc.StatusObject | undefined {
    return this.ended;
  }

  /** The clusters and endpoints of the latest specifier. */
  get checks(): ClusterCheck[] {
    return (this.latest?.cluster_health_checks ?? []).map((c) => ({
      cluster: c.cluster_name ?? '',
      healthCheck: c.health_checks?.[0] ?? {},
      endpoints: (c.locality_endpoints ?? []).flatMap((l) =>
        (l.endpoints ?? []).map((e) => ({
          address: e.address?.socket_address?.address ?? '',
          port: Number(e.address?.socket_address?.port_value ?? 0),
        })),
      ),
    }));
  }

  /** Every endpoint this client must check, per the latest specifier. */
  get assigned(): AssignedEndpoint[] {
    return this.checks.flatMap((c) => c.endpoints.map((e) => ({ cluster: c.cluster, ...e })));
  }

  /** The report interval the server asked for, in ms (Envoy defaults to 1000). */
  get reportIntervalMs(): number {
    const interval = this.latest?.interval;
    return interval === undefined ? 1000 : Number(interval.seconds ?? 0) * 1000 + Math.round((interval.nanos ?? 0) / 1e6);
  }

  /** Resolves once `condition` holds, re-checked on every specifier; rejects after the timeout. */
  async until(condition: (client: HdsClient) => boolean, timeoutMs = 10_000): Promise<void> {
    if (condition(this)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners = this.listeners.filter((l) => l !== check);
        reject(new Error(`HDS client ${this.options.nodeId}: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!condition(this)) return;
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
    });
  }

  /** Sends one EndpointHealthResponse, as Envoy does every interval. */
  report(results: (AssignedEndpoint & { status: EnvoyHealthStatus })[]): void {
    const byCluster = new Map<string, { endpoint: unknown; health_status: EnvoyHealthStatus }[]>();
    for (const r of results) {
      const health = { endpoint: { address: { socket_address: { address: r.address, port_value: r.port } } }, health_status: r.status };
      const list = byCluster.get(r.cluster);
      if (list === undefined) byCluster.set(r.cluster, [health]);
      else list.push(health);
    }
    this.send({
      endpoint_health_response: {
        cluster_endpoints_health: [...byCluster].map(([cluster, endpoints]) => ({
          cluster_name: cluster,
          locality_endpoints_health: [{ endpoints_health: endpoints }],
        })),
        endpoints_health: [...byCluster.values()].flat(),
      },
    });
  }

  /** Reports every assigned endpoint with the status `statusOf` gives it. */
  reportAssigned(statusOf: EnvoyHealthStatus | ((endpoint: AssignedEndpoint) => EnvoyHealthStatus)): void {
    this.report(this.assigned.map((e) => ({ ...e, status: typeof statusOf === 'string' ? statusOf : statusOf(e) })));
  }

  /** Sends a raw message (for tests of malformed input). */
  send(message: Record<string, unknown>): void {
    this.call.write(message);
  }

  /** Ends the stream as an Envoy shutting down would. */
  close(): void {
    this.call.end();
    this.call.cancel();
    this.client.close();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
