import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configKeys, connectNats, createObservability, type TenantRecord } from '@switchyard/shared';
import { Registry } from 'prom-client';
import { ConfigStore } from '../../src/store/index.js';
import { StoreFixture } from './fixture.js';

/**
 * A TCP relay between the client and a real nats-server that, once armed, cuts the connection
 * when the server's JetStream publish acknowledgement comes through: the write is stored, its
 * answer is lost, exactly what a node dying between storing and answering does.
 */
class AckCutter {
  private armed = false;
  /** Connections cut so far. */
  cuts = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(readonly server: Server) {}

  static async start(upstreamPort: number): Promise<AckCutter> {
    const cutter: AckCutter = new AckCutter(createServer((client) => cutter.relay(client, upstreamPort)));
    await new Promise<void>((resolve) => cutter.server.listen(0, '127.0.0.1', resolve));
    return cutter;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** Cuts the next connection that carries a publish acknowledgement. */
  arm(): void {
    this.armed = true;
  }

  private relay(client: Socket, upstreamPort: number): void {
    const upstream = createConnection({ port: upstreamPort, host: '127.0.0.1' });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => {
      if (this.armed && /"stream":"KV_[^"]+".*"seq":\d+/.test(chunk.toString('latin1'))) {
        this.armed = false;
        this.cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const tenant = (name: string, domain: string): TenantRecord => ({ schemaVersion: 1, name, spec: { domains: [domain] }, updatedAt: 1 });

describe('a create whose acknowledgement is lost', () => {
  let fixture: StoreFixture;
  let cutter: AckCutter;
  let store: ConfigStore;

  beforeAll(async () => {
    fixture = await StoreFixture.start();
    cutter = await AckCutter.start(fixture.server.port);
    const nc = await connectNats({
      servers: `nats://127.0.0.1:${cutter.port}`,
      name: 'phantom-test',
      logger: fixture.logger,
      observability: createObservability('test'),
    });
    store = await ConfigStore.open({ nc, logger: fixture.logger, registry: new Registry() });
  });
  afterAll(async () => {
    await store?.close();
    await store?.nc.close();
    await cutter?.close();
    await fixture?.close();
  });

  it('succeeds with the revision its lost attempt stored, instead of a phantom conflict', async () => {
    const record = tenant('phantom', 'phantom.test');
    cutter.arm();
    const revision = await store.putTenant(record, { ifAbsent: true });
    expect(cutter.cuts).toBe(1);

    const other = await fixture.openStore();
    const stored = await other.kv.get(configKeys.tenant('phantom'));
    expect(stored?.revision).toBe(revision);
    expect(stored?.json()).toEqual(record);
  }, 20_000);

  it('still reports a real conflict: a create over someone else’s value', async () => {
    await store.putTenant(tenant('taken', 'first.test'), { ifAbsent: true });
    await expect(store.putTenant(tenant('taken', 'second.test'), { ifAbsent: true })).rejects.toThrow('already exists');
  });
});
