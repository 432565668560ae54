import type { NatsServer } from '@switchyard/shared/testing';
import type { ServiceProcess, SwitchyardSystem } from './system.js';

/**
 * Killing one component and bringing it back, timed: SIGKILL, `downMs` dead, started again on
 * the same ports (and store, for a NATS node); recovered once it serves again — a service's
 * `/readyz`, a NATS node's client port with every service still ready (they reconnect by
 * themselves), and Envoy still serving.
 */

export interface Fault {
  component: string;
  kind: string;
  recoveryMs: number;
}

export async function killService(system: SwitchyardSystem, service: ServiceProcess, downMs: number, timeoutMs = 90_000): Promise<Fault> {
  const killedAt = Date.now();
  await service.kill();
  await sleep(downMs);
  service.start();
  await system.waitReady([service], timeoutMs);
  return { component: service.name, kind: service.service, recoveryMs: Date.now() - killedAt };
}

export async function killNatsNode(system: SwitchyardSystem, index: number, downMs: number, timeoutMs = 90_000): Promise<Fault> {
  const node = system.nats.node(index) as NatsServer;
  const killedAt = Date.now();
  await node.kill();
  await sleep(downMs);
  await node.restart();
  await system.waitReady(system.services, timeoutMs);
  return { component: `nats-${index + 1}`, kind: 'nats', recoveryMs: Date.now() - killedAt };
}

/**
 * The autoscaler replica holding the lease, waiting up to `timeoutMs` for one (a leader that
 * could not renew through a NATS disruption steps down, and a replica takes the lease again).
 */
export async function autoscalerLeader(system: SwitchyardSystem, timeoutMs = 30_000): Promise<ServiceProcess | undefined> {
  const deadline = Date.now() + timeoutMs;
  do {
    for (const replica of system.replicasOf('autoscaler')) {
      const described = (await replica.admin('/v1/autoscaler').catch(() => undefined)) as { leader?: boolean } | undefined;
      if (described?.leader === true) return replica;
    }
    await sleep(250);
  } while (Date.now() < deadline);
  return undefined;
}

/** The worst recovery per component kind. */
export function worstRecovery(faults: readonly Fault[]): Record<string, number> {
  const worst: Record<string, number> = {};
  for (const { kind, recoveryMs } of faults) worst[kind] = Math.max(worst[kind] ?? 0, recoveryMs);
  return worst;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
