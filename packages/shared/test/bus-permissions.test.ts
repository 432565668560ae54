import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermissionViolationError, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { NatsServer } from '../src/testing/index.js';
import { connectNats, ensureStreams, openBucket, permissionDenied } from '../src/nats.js';
import { createLogger } from '../src/logger.js';
import { createObservability } from '../src/observability.js';
import { buckets, busServices, subjectKinds, type BusService, type SubjectKindName } from '../src/messages.js';
import { busIdentities, newBusPasswords, permissionsOf, type BusIdentity } from '../src/bus-permissions.js';

const logger = createLogger('test', 'silent');

/** A connection as `identity` that records every permission violation the server reports. */
interface Probe {
  nc: NatsConnection;
  refused: PermissionViolationError[];
}

describe('NATS permissions enforced by a real nats-server with the generated config', () => {
  let server: NatsServer;
  const probes = new Map<BusIdentity, Probe>();

  async function probe(identity: BusIdentity): Promise<Probe> {
    const nc = await connectNats({
      servers: server.url,
      name: `probe-${identity}`,
      logger,
      observability: createObservability(identity),
      credentials: server.credentials(identity),
      identity,
    });
    const refused: PermissionViolationError[] = [];
    void (async () => {
      for await (const status of nc.status())
        if (status.type === 'error' && status.error instanceof PermissionViolationError) refused.push(status.error);
    })();
    return { nc, refused };
  }

  /** Publishes on core NATS and says whether the server refused it (its -ERR arrives before the flush's PONG). */
  async function publishRefused(p: Probe, subject: string): Promise<boolean> {
    const before = p.refused.length;
    p.nc.publish(subject, '{}');
    await settled(p);
    return p.refused.slice(before).some((e) => e.operation === 'publish' && e.subject === subject);
  }

  /** After a round trip every -ERR sent before it has arrived; a macrotask later the status listener has it too. */
  async function settled(p: Probe): Promise<void> {
    await p.nc.flush();
    await new Promise((r) => setTimeout(r, 0));
  }

  const subjectOf = (kind: SubjectKindName) =>
    `switchyard.${subjectKinds[kind].kind}.${subjectKinds[kind].tokens === 1 ? 'ack' : 'acme.web.blue'}`;

  beforeAll(async () => {
    server = await NatsServer.start({ passwords: newBusPasswords() });
    for (const identity of busIdentities) probes.set(identity, await probe(identity));
    // The streams' owner creates them; the other services only wait for them.
    await ensureStreams(probes.get('control-plane')!.nc);
    await openBucket(probes.get('control-plane')!.nc, buckets.config);
  });
  afterAll(async () => {
    for (const p of probes.values()) await p.nc.close();
    await server.dispose();
  });

  it('refuses clients without credentials or with a wrong password', async () => {
    await expect(
      connectNats({ servers: server.url, name: 'anonymous', logger, observability: createObservability('anonymous') }),
    ).rejects.toThrow(/authorization/i);
    await expect(
      connectNats({
        servers: server.url,
        name: 'guess',
        logger,
        observability: createObservability('guess'),
        credentials: { user: 'tools', password: 'guess' },
      }),
    ).rejects.toThrow(/authorization/i);
  });

  it('refuses the tools identity publishing on switchyard.endpoints.> and switchyard.health.> (and every other subject)', async () => {
    const tools = probes.get('tools')!;
    expect(await publishRefused(tools, 'switchyard.endpoints.acme.web.blue')).toBe(true);
    expect(await publishRefused(tools, 'switchyard.health.acme.web.blue')).toBe(true);
    for (const kind of Object.keys(subjectKinds) as SubjectKindName[])
      expect(await publishRefused(tools, subjectOf(kind)), kind).toBe(true);
    expect(await publishRefused(tools, '$KV.switchyard-config.tenants.acme')).toBe(true);
  });

  it('refuses the tools identity a JetStream publish, changing a stream and reading the config bucket', async () => {
    const nc = probes.get('tools')!.nc;
    await expect(jetstream(nc).publish('switchyard.endpoints.acme.web.blue', '{}')).rejects.toSatisfy(permissionDenied);
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.delete('SWITCHYARD_ENDPOINTS')).rejects.toSatisfy(permissionDenied);
    await expect(jsm.streams.purge('SWITCHYARD_HEALTH')).rejects.toSatisfy(permissionDenied);
    await expect(new Kvm(nc).open(buckets.config).then((kv) => kv.get('tenants.acme'))).rejects.toSatisfy(permissionDenied);
  });

  it('lets the tools identity follow every public subject and replay the event streams', async () => {
    const tools = probes.get('tools')!;
    const before = tools.refused.length;
    const sub = tools.nc.subscribe('switchyard.>', { max: 1 });
    await tools.nc.flush();
    await jetstream(probes.get('autoscaler')!.nc).publish('switchyard.endpoints.acme.web.blue', '{"seen":true}');
    for await (const msg of sub) expect(msg.subject).toBe('switchyard.endpoints.acme.web.blue');
    const consumer = await jetstream(tools.nc).consumers.get('SWITCHYARD_ENDPOINTS', { filter_subjects: 'switchyard.endpoints.>' });
    expect((await consumer.next({ expires: 5000 }))?.json()).toEqual({ seen: true });
    await settled(tools);
    expect(tools.refused.slice(before).map((e) => e.subject)).toEqual([]);
  });

  it.each(busServices)('lets %s publish what it owns and refuses it every subject another service owns', async (service: BusService) => {
    const p = probes.get(service)!;
    for (const kind of Object.keys(subjectKinds) as SubjectKindName[]) {
      const owns = subjectKinds[kind].publishers.includes(service);
      expect(await publishRefused(p, subjectOf(kind)), `${service} publishing ${kind}`).toBe(!owns);
    }
  });

  it('refuses stats-sink publishing an endpoint set, as core NATS and through JetStream', async () => {
    const statsSink = probes.get('stats-sink')!;
    expect(await publishRefused(statsSink, 'switchyard.endpoints.acme.web.blue')).toBe(true);
    await expect(jetstream(statsSink.nc).publish('switchyard.endpoints.acme.web.blue', '{}')).rejects.toSatisfy(permissionDenied);
  });

  it('lets only the control plane write the config bucket and only the autoscaler the lease bucket', async () => {
    const write = async (identity: BusIdentity, bucket: string) => {
      const kv = await new Kvm(probes.get(identity)!.nc).open(bucket);
      return kv.put('probe', 'x').then(
        () => 'written',
        (err: unknown) => (permissionDenied(err) ? 'refused' : String(err)),
      );
    };
    await openBucket(probes.get('autoscaler')!.nc, buckets.leases);
    for (const identity of busServices) {
      expect(await write(identity, buckets.config), `${identity} → config`).toBe(identity === 'control-plane' ? 'written' : 'refused');
      expect(await write(identity, buckets.leases), `${identity} → leases`).toBe(identity === 'autoscaler' ? 'written' : 'refused');
    }
  });

  it('lets a service that does not own the streams start once they exist, without changing them', async () => {
    const activator = probes.get('activator')!;
    const before = activator.refused.length;
    await ensureStreams(activator.nc);
    await settled(activator);
    expect(activator.refused.slice(before)).toEqual([]);
  });

  it('gives each service replies under an inbox no other identity may subscribe to', async () => {
    for (const identity of busIdentities) {
      const others = busIdentities.filter((o) => o !== identity).flatMap((o) => permissionsOf(o).subscribe);
      const inbox = permissionsOf(identity).subscribe[0] as string;
      if (identity !== 'tools') expect(others.some((pattern) => pattern === '>' || pattern.startsWith(inbox.slice(0, -1)))).toBe(false);
    }
    const tools = probes.get('tools')!;
    tools.nc.subscribe('_INBOX_control-plane.>');
    await settled(tools);
    expect(tools.refused.some((e) => e.operation === 'subscription' && e.subject === '_INBOX_control-plane.>')).toBe(true);
  });
});
