import { freePort } from '../net.js';
import { NatsServer } from './nats-server.js';

export interface NatsClusterOptions {
  /** Nodes in the cluster (3 lets JetStream keep a quorum with one node down). */
  size?: number;
  binary?: string;
}

/**
 * A real JetStream cluster of nats-servers on 127.0.0.1, each node with its own temp store and
 * free client and route ports, fully meshed by routes. Tests kill (SIGKILL) or stop one node
 * and restart it on the same ports and store, as in a node failure.
 */
export class NatsCluster {
  private constructor(readonly nodes: NatsServer[]) {}

  static async start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    const size = options.size ?? 3;
    const clusterName = `switchyard-test-${process.pid}`;
    const routePorts: number[] = [];
    const clientPorts: number[] = [];
    // Allocated one after another so no two are the same; each is free when picked.
    for (let i = 0; i < size; i++) {
      routePorts.push(await freePort());
      clientPorts.push(await freePort());
    }
    const routeUrl = (port: number) => `nats://127.0.0.1:${port}`;
    const nodes = await Promise.all(
      routePorts.map((routePort, i) =>
        NatsServer.start({
          port: clientPorts[i],
          ...(options.binary === undefined ? {} : { binary: options.binary }),
          cluster: {
            serverName: `n${i + 1}`,
            clusterName,
            routePort,
            routes: routePorts.filter((p) => p !== routePort).map(routeUrl),
          },
        }),
      ),
    );
    return new NatsCluster(nodes);
  }

  /** Every node's client URL, comma-separated, as NATS_URL takes them. */
  get servers(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  node(index: number): NatsServer {
    const node = this.nodes[index];
    if (node === undefined) throw new Error(`the cluster has ${this.nodes.length} nodes, not ${index + 1}`);
    return node;
  }

  /** Kills and deletes every node's store. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
  }
}
