import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@switchyard/local';
import { echoClientConstructor, type EchoReply, type HttpAnswer } from '@switchyard/demo';
import { allServices, BusRecorder, eventually, fastEnv, managedInstances, xdsEchoClient } from '../support/stack.js';
import { startEnvoyWorld, type EnvoyWorld } from './support.js';

const httpEchoCommand = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/http-echo-main.js')];
const grpcEchoCommand = [process.execPath, join(repoRoot(), 'packages/demo/dist/src/grpc-echo-main.js')];
/** The activator's bound per revision in this test. */
const maxHeld = 50;

/**
 * A service that scales to zero: 10 requests per instance, no retries (so a 503 reaches the
 * client as sent). Its instances take 1.5 s to start, so on a loaded machine a whole burst
 * reaches the activator before the first instance is ready.
 */
function coldService(domain: string, revision: string, protocol: 'http' | 'grpc' = 'http') {
  return {
    domains: [domain],
    protocol,
    healthCheck: protocol === 'http' ? { interval: '1s', timeout: '500ms' } : { protocol: 'tcp', interval: '1s', timeout: '500ms' },
    retries: { attempts: 0 },
    scaling: { minInstances: 0, maxInstances: 6, maxConcurrency: 10, targetUtilization: 1 },
    revisions: [
      {
        name: revision,
        command: protocol === 'http' ? httpEchoCommand : grpcEchoCommand,
        env: { REVISION: revision, START_DELAY_MS: '1500' },
      },
    ],
  };
}

type EchoStub = grpc.Client & {
  Say(req: { message: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): void;
};

/** `count` concurrent calls; each settles to its reply or its error. */
function calls(count: number, say: () => Promise<EchoReply>): Promise<({ reply: EchoReply } | { error: string })[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      say().then(
        (reply) => ({ reply }),
        (err: unknown) => ({ error: String(err) }),
      ),
    ),
  );
}

describe('scale from zero through the activator, behind a real Envoy', () => {
  let world: EnvoyWorld;
  let bus: BusRecorder;

  beforeAll(async () => {
    world = await startEnvoyWorld({ services: allServices, env: { ...fastEnv, ACTIVATOR_MAX_HELD: String(maxHeld) } });
    bus = await BusRecorder.connect(world.nats);
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
  }, 60_000);
  afterAll(async () => {
    await bus?.close();
    await world?.stop();
  });

  /** Creates the service and waits until Envoy sends its revision to the activator (EDS) on a route that names it. */
  async function atZero(name: string, revision: string, protocol: 'http' | 'grpc' = 'http'): Promise<void> {
    await world.api.ok('PUT', `/v1/tenants/acme/services/${name}`, coldService(`${name}.acme.test`, revision, protocol));
    await eventually(async () => {
      const clusters = (await world.envoy.admin('/clusters')).text;
      const routes = (await world.envoy.admin('/config_dump?resource=dynamic_route_configs')).text;
      return clusters.includes(`sy_acme_${name}_${revision}::127.0.0.1:`) && routes.includes(`${name}.acme.test`);
    }, 20_000);
    expect(await managedInstances(world.stack, revision)).toEqual([]);
  }

  function burst(domain: string, count: number): Promise<HttpAnswer[]> {
    return Promise.all(Array.from({ length: count }, () => world.http(domain, '/', { timeoutMs: 30_000 })));
  }

  it('50 concurrent requests at zero instances: none fails, all answered by instances, the first decision sizes for them', async () => {
    await atZero('cold', 'v1');
    const decisions = bus.record('scale', 'switchyard.scale.acme.cold.v1');
    const pokes = bus.record('activate', 'switchyard.activate.acme.cold.v1');

    const answers = await burst('cold.acme.test', 50);

    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.body.slice(0, 120)}`)).toEqual([]);
    expect(answers.every((a) => a.body.includes('v1'))).toBe(true);
    // The first decision comes from a poke, not a load report. On a loaded machine the burst can
    // reach the activator over more than the 20 ms poke window: the decision on the poke that
    // counts all 50 held sizes for them (it is made at once, not at the next load report).
    const seen = JSON.stringify({ pokes: pokes.map((p) => p.held), decisions: decisions.map((d) => `${d.desired}: ${d.reason}`) });
    const first = decisions.find((d) => d.desired > 0);
    expect(first?.reason, seen).toMatch(/held by the activator/);
    for (const d of decisions) {
      // A decision no limit changed (a limit appends "; <why> → <value>") sizes for what is held.
      const held = /^(\d+) requests held by the activator at 10 per instance → \d+$/.exec(d.reason)?.[1];
      if (held !== undefined) expect(d.desired, seen).toBe(Math.ceil(Number(held) / 10));
    }
    const onWholeBurst = decisions.find((d) => /^50 requests held by the activator|^panic: 50\.0 in flight/.test(d.reason));
    expect(onWholeBurst?.desired, seen).toBeGreaterThanOrEqual(5);
    expect(Math.max(...pokes.map((p) => p.held)), seen).toBe(50);
    expect(pokes.at(-1)?.held, seen).toBe(0);
  }, 60_000);

  it('requests beyond the queue bound get 503 with retry-after; the rest are answered', async () => {
    await atZero('colder', 'v2');

    const answers = await burst('colder.acme.test', maxHeld + 10);

    const rejected = answers.filter((a) => a.status === 503);
    expect(rejected).toHaveLength(10);
    for (const a of rejected) {
      expect(a.headers['retry-after']).toBe('1');
      expect(a.body).toMatch(/already holds 50 requests \(the bound is 50\)/);
    }
    expect(answers.filter((a) => a.status === 200)).toHaveLength(maxHeld);
  }, 60_000);

  it('the activator reports what it did on /metrics', async () => {
    const metrics = await (await fetch(`${world.stack.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_activator_requests_total\{outcome="forwarded"[^}]*\} 100/);
    expect(metrics).toMatch(/switchyard_activator_requests_total\{outcome="rejected"[^}]*\} 10/);
    expect(metrics).toMatch(/switchyard_activator_queue_seconds_count\{[^}]*outcome="forwarded"[^}]*\} 100/);
    await eventually(async () => {
      const now = await (await fetch(`${world.stack.adminUrl}/metrics`)).text();
      return /switchyard_activator_held_requests\{[^}]*service="cold",revision="v1"[^}]*\} 0/.test(now);
    });
  });

  it('gRPC through Envoy (HTTP/2 to the activator): 50 concurrent calls at zero instances, none fails', async () => {
    await atZero('rpc', 'g1', 'grpc');
    const Echo = echoClientConstructor();
    const client = new Echo(`127.0.0.1:${world.stack.envoyHttpPort}`, grpc.credentials.createInsecure(), {
      'grpc.default_authority': 'rpc.acme.test',
    }) as unknown as EchoStub;
    const say = () =>
      new Promise<EchoReply>((resolve, reject) =>
        client.Say({ message: 'cold' }, { deadline: Date.now() + 30_000 }, (err, reply) => (err || !reply ? reject(err) : resolve(reply))),
      );
    try {
      const results = await calls(50, say);
      expect(results.filter((r) => 'error' in r)).toEqual([]);
      expect(results.every((r) => 'reply' in r && r.reply.revision === 'g1' && r.reply.message === 'cold')).toBe(true);
    } finally {
      client.close();
    }
  }, 60_000);

  it('a proxyless gRPC client (grpc-js-xds) sent to the activator by EDS: 50 concurrent calls at zero instances, none fails', async () => {
    await atZero('proxyless', 'p1', 'grpc');
    const client = xdsEchoClient('proxyless.acme.test', world.stack.grpcPort, 'activator-proxyless-client');
    try {
      const results = await calls(50, () => client.say());
      expect(results.filter((r) => 'error' in r)).toEqual([]);
      expect(results.every((r) => 'reply' in r && r.reply.revision === 'p1')).toBe(true);
      expect(await managedInstances(world.stack, 'p1')).not.toEqual([]);
    } finally {
      client.close();
    }
  }, 60_000);
});
