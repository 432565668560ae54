import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { grpcService, loadGrpcPackage, protoFiles } from '@switchyard/shared';
import type { DemoBehaviour } from './behaviour.js';

export interface EchoRequest {
  message?: string;
  delay_ms?: number;
}
export interface EchoReply {
  message: string;
  instance: string;
  revision: string;
}

export const echoServiceName = 'switchyard.demo.v1.Echo';

export function echoClientConstructor(): grpc.ServiceClientConstructor {
  return grpcService(loadGrpcPackage([protoFiles.demoEcho]), echoServiceName);
}

/** A small gRPC service answering `Echo/Say` with the instance and revision that served it. */
export async function startGrpcEcho(
  port: number,
  behaviour: DemoBehaviour,
): Promise<{ port: number; /** Calls received, answered or failed. */ calls(): number; close(): Promise<void> }> {
  const server = new grpc.Server();
  let boundPort = 0;
  let calls = 0;
  server.addService(echoClientConstructor().service, {
    Say: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      calls++;
      const delay = Math.min(60_000, Math.max(0, Number(call.request.delay_ms ?? 0)));
      setTimeout(() => {
        if (Math.random() < behaviour.failRate) {
          callback({ code: grpc.status.UNAVAILABLE, details: `revision ${behaviour.revision} failed on purpose (FAIL_RATE)` });
          return;
        }
        callback(null, { message: call.request.message ?? '', instance: `${behaviour.host}:${boundPort}`, revision: behaviour.revision });
      }, delay);
    },
  });
  boundPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${behaviour.host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const startedAt = Date.now();
  // Without its listener nothing else keeps the process alive (grpc-js does not hold the event
  // loop for open connections): an instance failing its checks must stay up until it is stopped.
  let keepAlive: NodeJS.Timeout | undefined;
  const chaos = setInterval(() => {
    const expired = behaviour.unhealthyAfterMs > 0 && Date.now() - startedAt > behaviour.unhealthyAfterMs;
    const flagged = behaviour.chaosDir !== undefined && existsSync(join(behaviour.chaosDir, `${boundPort}.unhealthy`));
    if (expired || flagged) {
      clearInterval(chaos);
      server.unbind(`${behaviour.host}:${boundPort}`);
      keepAlive = setInterval(() => undefined, 60_000);
    }
  }, 100);
  chaos.unref();
  return {
    port: boundPort,
    calls: () => calls,
    close: () => {
      clearInterval(chaos);
      clearInterval(keepAlive);
      return new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}
