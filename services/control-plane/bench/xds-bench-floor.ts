import * as grpc from '@grpc/grpc-js';
import { bytesBidi, rawPath, wallMs, type FromFloor, type ToFloor } from './xds-bench-protocol.js';

/**
 * The transport's floor, in a process of its own (so the control plane's peak RSS is its
 * own): a bare grpc-js bidi method that writes the bytes it is given to every stream and
 * counts the answers.
 */

const send = (message: FromFloor) => process.send!(message);
const calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
let received = 0;
let waitingFor: { round: number; count: number } | undefined;

const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
server.addService(bytesBidi(rawPath), {
  Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    calls.add(call);
    call.on('data', () => {
      received++;
      if (waitingFor !== undefined && received >= waitingFor.count) {
        send({ kind: 'acked', round: waitingFor.round });
        waitingFor = undefined;
      }
    });
    call.on('error', () => calls.delete(call));
    call.on('cancelled', () => calls.delete(call));
  },
});

server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  send({ kind: 'listening', port });
});

process.on('message', (message: ToFloor) => {
  switch (message.kind) {
    case 'count':
      send({ kind: 'counted', streams: calls.size, received });
      break;
    case 'push': {
      const bytes = Buffer.from(message.bytes, 'base64');
      waitingFor = { round: message.round, count: received + calls.size };
      const t0 = wallMs();
      for (const call of calls) call.write(bytes);
      send({ kind: 'pushed', round: message.round, t0 });
      break;
    }
    case 'stop':
      server.forceShutdown();
      send({ kind: 'stats', rssMb: process.resourceUsage().maxRSS / 1024 });
      setImmediate(() => process.exit(0));
      break;
  }
});
