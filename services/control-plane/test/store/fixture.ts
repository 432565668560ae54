import { connectNats, createLogger, createObservability, type Logger, type NatsConnection } from '@switchyard/shared';
import { NatsServer } from '@switchyard/shared/testing';
import { Registry } from 'prom-client';
import { ConfigStore } from '../../src/store/index.js';

/** A real nats-server plus helpers to open connections and stores on it; `close()` disposes everything. */
export class StoreFixture {
  readonly logger: Logger = createLogger('control-plane-test', process.env.TEST_LOG_LEVEL ?? 'silent');
  private readonly connections: NatsConnection[] = [];
  private readonly stores: ConfigStore[] = [];

  private constructor(readonly server: NatsServer) {}

  static async start(): Promise<StoreFixture> {
    return new StoreFixture(await NatsServer.start());
  }

  async connect(): Promise<NatsConnection> {
    const nc = await connectNats({
      servers: this.server.url,
      name: 'test',
      logger: this.logger,
      observability: createObservability('test'),
    });
    this.connections.push(nc);
    return nc;
  }

  /** Opens a store on its own connection, as a separate control-plane replica would. */
  async openStore(registry = new Registry()): Promise<ConfigStore> {
    const store = await ConfigStore.open({ nc: await this.connect(), logger: this.logger, registry });
    this.stores.push(store);
    return store;
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((s) => s.close()));
    await Promise.all(this.connections.map((nc) => nc.close()));
    await this.server.dispose();
  }
}

/** Polls until `check` stops throwing, or fails with its last error after `timeoutMs`. */
export async function eventually(check: () => void | Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
