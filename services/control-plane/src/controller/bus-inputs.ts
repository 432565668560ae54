import {
  clusterName,
  consumeStream,
  messageCounters,
  streams,
  subjectPattern,
  subscribe,
  type EndpointSet,
  type LoadSample,
  type Logger,
  type NatsConnection,
  type Subscription,
} from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { endpointKey, type EndpointHealth } from '../translator/index.js';
import { recordEndpointSet, recordHealth } from '../translator/inputs.js';

/**
 * What the bus tells the control plane beyond the desired state: each managed revision's
 * endpoint set (replayed last-per-subject from JetStream, so a restarted control plane misses
 * nothing), endpoint health (replayed from JetStream), the latest load per revision (core
 * NATS, for the deployment controller's error ratio) and the revisions the instance provider
 * cannot run (so a deployment of one fails at once).
 */
export class BusInputs {
  readonly endpointSets = new Map<string, EndpointSet>();
  readonly health = new Map<string, ReadonlyMap<string, EndpointHealth>>();
  readonly load = new Map<string, LoadSample>();
  /** Revisions (by cluster name) the instance provider reported it cannot run, with its reason. */
  readonly notRunnable = new Map<string, string>();
  private readonly listeners = new Set<() => void>();
  private readonly loadListeners = new Set<(cluster: string, sample: LoadSample) => void>();
  private stops: (() => Promise<void> | void)[] = [];

  private constructor(private readonly deps: { logger: Logger; registry: Registry }) {}

  /** Starts following the bus; resolves once the JetStream replays have caught up. */
  static async start(nc: NatsConnection, deps: { logger: Logger; registry: Registry }): Promise<BusInputs> {
    const inputs = new BusInputs(deps);
    const endpoints = await consumeStream(
      nc,
      'endpoints',
      { stream: streams.endpoints.name, pattern: subjectPattern('endpoints'), replay: { from: 'last_per_subject' } },
      deps,
      ({ payload }) => inputs.applyEndpointSet(payload, Date.now()),
    );
    const health = await consumeStream(
      nc,
      'health',
      { stream: streams.health.name, pattern: subjectPattern('health'), replay: { from: 'all' } },
      deps,
      ({ payload }) => {
        if (recordHealth(inputs.health, payload)) inputs.notify();
      },
    );
    const load: Subscription = subscribe(nc, 'load', subjectPattern('load'), deps, ({ payload }) => {
      const cluster = clusterName(payload);
      inputs.load.set(cluster, payload);
      for (const listener of inputs.loadListeners) listener(cluster, payload);
    });
    const instances: Subscription = subscribe(nc, 'instance', subjectPattern('instance'), deps, ({ payload }) => {
      if (payload.event === 'not_runnable') inputs.notRunnable.set(clusterName(payload), payload.detail);
      else inputs.notRunnable.delete(clusterName(payload));
      inputs.notify();
    });
    inputs.stops = [endpoints.stop, health.stop, () => load.unsubscribe(), () => instances.unsubscribe()];
    await Promise.all([endpoints.caughtUp, health.caughtUp]);
    return inputs;
  }

  applyEndpointSet(set: EndpointSet, now: number): void {
    const verdict = recordEndpointSet(this.endpointSets, set, now);
    if (verdict === 'from_future') {
      messageCounters(this.deps.registry).dropped.inc({ kind: 'endpoints', reason: 'from_future' });
      this.deps.logger.warn(
        { tenant: set.tenant, service: set.service, revision: set.revision, generation: set.generation },
        'dropped endpoint set: its generation is too far ahead of the clock',
      );
    }
    if (verdict !== 'recorded') return;
    // Health of instances that are gone would otherwise accumulate forever.
    const byEndpoint = this.health.get(clusterName(set));
    if (byEndpoint !== undefined) {
      const current = new Set(set.endpoints.map((e) => endpointKey(e.address, e.port)));
      const kept = new Map([...byEndpoint].filter(([key]) => current.has(key)));
      if (kept.size < byEndpoint.size) this.health.set(clusterName(set), kept);
    }
    this.notify();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called with every load sample (which does not call the onChange listeners: most change no config). */
  onLoad(listener: (cluster: string, sample: LoadSample) => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  async stop(): Promise<void> {
    await Promise.all(this.stops.map((stop) => stop()));
  }
}
