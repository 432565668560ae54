import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import { AggregatorRegistry, Registry, type Metric } from 'prom-client';
import type { XdsCache } from './cache.js';
import { mergeNodeStatuses } from './node-status.js';
import { registerXdsServices, type XdsServer, type XdsServerDeps } from './server.js';
import type { Writable } from 'node:stream';
import {
  controlFd,
  controlFrame,
  toWire,
  type ConnectionMessage,
  type FromWorker,
  type ToWorker,
  type WorkerSettings,
  type WorkerStatus,
} from './worker-protocol.js';

/**
 * xDS served from every core: worker processes, each with a replica of this process's cache
 * and the xDS services on a gRPC server of its own, take turns with this process in serving
 * the gRPC port's connections. Resources are encoded once, here; each version's bytes cross
 * to each worker once (IPC), and a worker builds responses from them as this process does.
 * What the workers' streams do comes back as events (connect, ACK, NACK: the same onEvent the
 * local server has) and as a status report at most every 250 ms (nodes, stream counts,
 * metrics; the registry's xDS metrics are the sums over every process).
 */
export interface XdsWorkerOptions {
  /** Worker processes besides this one. */
  count: number;
  settings: WorkerSettings;
}

export interface XdsWorkers {
  /** Hands a connection to the next server in turn; false when it is this process's turn (or no worker is up). */
  take(socket: Socket): boolean;
  /** This process's server and every worker seen as one. */
  readonly server: XdsServer;
  /** This process's own streams. */
  readonly local: XdsServer;
  /** Resolves once every worker serves. */
  ready(): Promise<void>;
}

const restartDelayMs = 1000;
const noStatus: WorkerStatus = { nodes: [], streams: 0, bytesInFlight: 0, settled: true, inSync: [0, 0, 0, 0, 0, 0], metrics: [] };

class WorkerProcess {
  child!: ChildProcess;
  status = noStatus;
  listening!: Promise<void>;
  private control!: Writable;
  private started = false;
  /** Connections waiting to be handed over, one at a time (see hand). */
  private readonly handing: Socket[] = [];
  private handingOne = false;
  private closing = false;

  constructor(
    private readonly script: string,
    private readonly cache: XdsCache,
    private readonly deps: XdsServerDeps,
    private readonly settings: WorkerSettings,
  ) {
    this.spawn();
  }

  /** Serving: started (it said so) and not going away. */
  get up(): boolean {
    return this.started && this.child.connected && !this.closing;
  }

  send(message: ToWorker): void {
    if (this.child.connected) this.control.write(controlFrame(message));
  }

  /**
   * Node sends a socket only once the worker acknowledged the previous one, and while it waits
   * it re-queues every queued message at each acknowledgement: handing 2,500 sockets at once
   * costs quadratic time (3 of the control plane's 18 CPU-seconds in a 5,000-stream initial
   * sync). So one at a time: the next goes when the last is written.
   */
  hand(socket: Socket): void {
    this.handing.push(socket);
    if (!this.handingOne) this.handNext();
  }

  private handNext(): void {
    const socket = this.handing.shift();
    this.handingOne = socket !== undefined;
    if (socket === undefined) return;
    const message: ConnectionMessage = { kind: 'connection' };
    const next = (err: Error | null) => {
      // The worker is gone: its clients reconnect.
      if (err !== null) socket.destroy();
      this.handNext();
    };
    if (this.child.connected) this.child.send(message, socket, next);
    else next(new Error('worker gone'));
  }

  close(): void {
    this.closing = true;
    if (this.child.connected) this.child.disconnect();
  }

  private spawn(): void {
    const stdio = ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] as const;
    const child = fork(this.script, [], { serialization: 'advanced', stdio: [...stdio], execArgv: [] });
    this.child = child;
    this.control = child.stdio[controlFd] as Writable;
    // A worker that died takes its end of the pipe with it; its exit is handled below.
    this.control.on('error', () => undefined);
    this.status = noStatus;
    this.started = false;
    this.listening = new Promise((resolve) => {
      child.on('message', (message: FromWorker) => {
        if (message.kind === 'listening') {
          this.started = true;
          resolve();
        } else if (message.kind === 'event') this.deps.onEvent?.(message.event);
        else this.status = message.status;
      });
    });
    child.on('exit', (code, signal) => {
      if (this.closing) return;
      this.deps.logger.error({ pid: child.pid, code, signal }, 'xDS worker process ended; its clients reconnect; restarting it');
      setTimeout(() => this.closing || this.spawn(), restartDelayMs).unref();
    });
    // The whole state, then every change (the cache's listeners run synchronously, so nothing falls between).
    this.send({ kind: 'start', settings: this.settings });
    this.send({ kind: 'changes', batches: toWire(this.cache.contents()), ready: this.cache.ready });
  }
}

/** The compiled worker beside this module; when tests run this module from source, the one `pnpm build` wrote. */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return here.replace(/[/\\]src[/\\]xds[/\\]workers\.ts$/, '/dist/src/xds/worker-process.js');
  return join(dirname(here), 'worker-process.js');
}

/**
 * The xDS services on `grpcServer` (with metrics on a registry of their own) plus `count`
 * worker processes; `take` decides which serves each connection of the port.
 */
export function startXdsWorkers(grpcServer: grpc.Server, cache: XdsCache, deps: XdsServerDeps, options: XdsWorkerOptions): XdsWorkers {
  const localRegistry = new Registry();
  const local = registerXdsServices(grpcServer, cache, { ...deps, registry: localRegistry });
  const script = workerScript();
  const workers = Array.from({ length: options.count }, () => new WorkerProcess(script, cache, deps, options.settings));
  summedMetrics(deps.registry, localRegistry, workers);
  const unsubscribe = cache.onApplied((batches, ready) => {
    const message: ToWorker = { kind: 'changes', batches: toWire(batches), ready };
    for (const worker of workers) worker.send(message);
  });
  let turn = 0;
  const everyone = () => [local, ...workers.map((w) => w.status)];
  const server: XdsServer = {
    nodes: () => mergeNodeStatuses([local.nodes(), ...workers.map((w) => w.status.nodes)]),
    get streamCount() {
      return local.streamCount + workers.reduce((n, w) => n + w.status.streams, 0);
    },
    get bytesInFlight() {
      return everyone().reduce((n, s) => n + s.bytesInFlight, 0);
    },
    settled: () => local.settled() && workers.every((w) => w.status.settled),
    streamsInSync: (minTypes = 1) =>
      local.streamsInSync(minTypes) + workers.reduce((n, w) => n + (w.status.inSync[Math.min(minTypes, 5)] ?? 0), 0),
    dropAllStreams: () => {
      local.dropAllStreams();
      for (const worker of workers) worker.send({ kind: 'drop' });
    },
    close: () => {
      unsubscribe();
      for (const worker of workers) worker.close();
      local.close();
    },
  };
  return {
    server,
    local,
    take: (socket) => {
      turn = (turn + 1) % (workers.length + 1);
      const worker = workers[turn - 1];
      if (worker === undefined || !worker.up) return false;
      worker.hand(socket);
      return true;
    },
    ready: () => Promise.all(workers.map((w) => w.listening)).then(() => undefined),
  };
}

/** Each of the local registry's metrics on `registry`, as the sum (per the metric's aggregator) over this process and every worker. */
function summedMetrics(registry: Registry, local: Registry, workers: readonly WorkerProcess[]): void {
  // getMetricsAsArray returns the metric objects themselves (typed as their JSON shape).
  for (const metric of local.getMetricsAsArray() as unknown as (Metric & { name: string })[]) {
    const name = metric.name;
    if (registry.getSingleMetric(name) !== undefined) registry.removeSingleMetric(name);
    const sum = async () => {
      const parts = [[await metric.get()], ...workers.map((w) => w.status.metrics.filter((m) => m.name === name))];
      return AggregatorRegistry.aggregate(parts).getSingleMetric(name)!.get();
    };
    registry.registerMetric({ ...metric, name, get: sum, reset: () => metric.reset() } as unknown as Metric);
  }
}
