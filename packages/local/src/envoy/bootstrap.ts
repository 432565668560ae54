import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './find.js';

/** Host and port of one of Switchyard's gRPC services, as this Envoy reaches it. */
export interface GrpcAddress {
  host: string;
  port: number;
}

export interface LocalBootstrapOptions {
  /** Where Envoy reaches the control plane (ADS). */
  controlPlane: GrpcAddress;
  /** MetricsService and LRS; defaults to the control plane's address (all-in-one shares one port). */
  statsSink?: GrpcAddress;
  /** HDS; defaults to the control plane's address. */
  eventStreamer?: GrpcAddress;
  /** Envoy's admin port on 127.0.0.1; 0 lets the OS choose (read it from the admin address file). */
  adminPort: number;
  /** A directory of this Envoy's own for the files it writes (outlier event log). */
  dataDir: string;
  /** How often Envoy flushes stats to the MetricsService (default: the deploy bootstrap's 1 s). */
  statsFlushMs?: number;
}

interface GrpcCluster {
  name: string;
  type?: string;
  dns_lookup_family?: string;
  transport_socket?: unknown;
  load_assignment: { endpoints: unknown[] };
}

/** The parts of envoy.config.bootstrap.v3.Bootstrap this module changes; the rest passes through. */
export interface BootstrapDocument {
  admin: { address: { socket_address: unknown } };
  static_resources: { clusters: GrpcCluster[] };
  cluster_manager: { outlier_detection: { event_log_path: string } };
  stats_flush_interval?: string;
  [field: string]: unknown;
}

/** The bootstrap every Envoy of the fleet runs (deploy/envoy/bootstrap.yaml), as an object. */
export function deployBootstrap(): BootstrapDocument {
  return parse(readFileSync(join(repoRoot(), 'deploy', 'envoy', 'bootstrap.yaml'), 'utf8')) as BootstrapDocument;
}

/**
 * The deploy bootstrap, pointed at Switchyard on this machine: the three gRPC clusters become
 * static addresses, admin stays on loopback at the chosen port, files go under `dataDir`.
 * Everything else (delta ADS, edge limits, overload manager, stats matcher) is unchanged, so
 * local runs and tests exercise the bootstrap that production uses.
 */
export function localBootstrap(options: LocalBootstrapOptions): BootstrapDocument {
  const bootstrap = deployBootstrap();
  const addresses: Record<string, GrpcAddress> = {
    'control-plane': options.controlPlane,
    'stats-sink': options.statsSink ?? options.controlPlane,
    'event-streamer': options.eventStreamer ?? options.controlPlane,
  };
  bootstrap.admin.address.socket_address = { address: '127.0.0.1', port_value: options.adminPort };
  for (const cluster of bootstrap.static_resources.clusters) {
    const address = addresses[cluster.name];
    if (address === undefined) continue;
    cluster.type = 'STATIC';
    // On loopback the all-in-one serves gRPC without TLS (production bootstraps keep theirs).
    delete cluster.transport_socket;
    delete cluster.dns_lookup_family;
    cluster.load_assignment.endpoints = [
      { lb_endpoints: [{ endpoint: { address: { socket_address: { address: address.host, port_value: address.port } } } }] },
    ];
  }
  bootstrap.cluster_manager.outlier_detection.event_log_path = join(options.dataDir, 'outlier_events.jsonl');
  if (options.statsFlushMs !== undefined) bootstrap.stats_flush_interval = `${options.statsFlushMs / 1000}s`;
  return bootstrap;
}
