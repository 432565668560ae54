import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBackend } from './backend.js';
import { echoOf, startEnvoyWorld, type EnvoyWorld } from './support.js';
import { eventually } from '../support/stack.js';

/** A gRPC server with only the standard health service (grpc.health.v1). */
class HealthServer {
  private constructor(
    readonly health: HealthImplementation,
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<HealthServer> {
    const server = new grpc.Server();
    const health = new HealthImplementation({ '': 'SERVING' });
    health.addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    return new HealthServer(health, server, port);
  }

  get endpoint(): { address: string; port: number } {
    return { address: '127.0.0.1', port: this.port };
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

/**
 * Active health checks run by Envoy itself (ENVOY_ACTIVE_HEALTH_CHECK_EVENT_LOG set): a broken
 * instance leaves the load balancer. HTTP services get an HTTP GET of the spec's path; gRPC
 * services Envoy's gRPC health checker (grpc.health.v1), which a gRPC server can answer.
 */
describe('active health checks through Envoy 1.40', () => {
  let world: EnvoyWorld;
  let dir: string;
  let eventLog: string;
  const web: TestBackend[] = [];
  const rpc: HealthServer[] = [];
  const check = { interval: '500ms', timeout: '400ms', unhealthyThreshold: 2, healthyThreshold: 1 };

  const healthy = (cluster: string) => world.envoy.stat(`cluster.${cluster}.membership_healthy`);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-hc-'));
    eventLog = join(dir, 'health_check_events.jsonl');
    web.push(await TestBackend.start('web-a'), await TestBackend.start('web-b'));
    rpc.push(await HealthServer.start(), await HealthServer.start());
    world = await startEnvoyWorld({ env: { ENVOY_ACTIVE_HEALTH_CHECK_EVENT_LOG: eventLog } });
    await world.api.ok('PUT', '/v1/tenants/acme', { domains: ['acme.test'] });
    await world.api.ok('PUT', '/v1/tenants/acme/services/web', {
      domains: ['web.acme.test'],
      healthCheck: { protocol: 'http', path: '/healthz', ...check },
      retries: { attempts: 0 },
      revisions: [{ name: 'v1', endpoints: web.map((b) => b.endpoint) }],
    });
    await world.api.ok('PUT', '/v1/tenants/acme/services/rpc', {
      domains: ['rpc.acme.test'],
      protocol: 'grpc',
      healthCheck: { protocol: 'http', ...check },
      revisions: [{ name: 'v1', endpoints: rpc.map((s) => s.endpoint) }],
    });
  });
  afterAll(async () => {
    await world?.stop();
    for (const backend of web) await backend.stop();
    for (const server of rpc) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('HTTP service: probes the path, and an instance failing it stops getting requests', async () => {
    await eventually(async () => expect(await healthy('sy_acme_web_v1')).toBe(2));
    const [broken, sound] = web as [TestBackend, TestBackend];
    expect(broken.count('/healthz')).toBeGreaterThan(0);
    broken.failHealth = true;
    await eventually(async () => expect(await healthy('sy_acme_web_v1')).toBe(1));
    const before = broken.count('/after');
    const answers = await Promise.all(Array.from({ length: 20 }, () => world.http('web.acme.test', '/after')));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => echoOf(a).backend))).toEqual(new Set([sound.name]));
    expect(broken.count('/after')).toBe(before);
    // Envoy's check events reach the file the event-streamer tails.
    await eventually(async () => expect(await readFile(eventLog, 'utf8')).toContain('"health_checker_type":"HTTP"'));
  });

  it('gRPC service: checked over grpc.health.v1, and a NOT_SERVING instance is removed', async () => {
    // An HTTP GET of a gRPC server never passes (415): both healthy means the gRPC checker ran.
    await eventually(async () => expect(await healthy('sy_acme_rpc_v1')).toBe(2));
    (rpc[0] as HealthServer).health.setStatus('', 'NOT_SERVING');
    await eventually(async () => expect(await healthy('sy_acme_rpc_v1')).toBe(1));
    await eventually(async () => expect(await readFile(eventLog, 'utf8')).toContain('"health_checker_type":"GRPC"'));
    (rpc[0] as HealthServer).health.setStatus('', 'SERVING');
    await eventually(async () => expect(await healthy('sy_acme_rpc_v1')).toBe(2));
  });
});
