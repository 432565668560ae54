/**
 * The benchmark's load: a separate process (so its CPU and memory are not the sink's) that
 * opens every LRS and MetricsService stream on its own connection, as a fleet would, and
 * writes the pre-encoded corpus as fast as flow control lets it.
 */
import * as grpc from '@grpc/grpc-js';
import { buildCorpus, type CorpusParams, type StreamCorpus } from './corpus.js';

interface StartMessage {
  type: 'start';
  target: string;
  params: CorpusParams;
}

const lrsPath = '/envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats';
const metricsPath = '/envoy.service.metrics.v3.MetricsService/StreamMetrics';
const raw = (b: Buffer) => b;
const calls: grpc.ClientWritableStream<Buffer>[] = [];

function pump(call: grpc.ClientWritableStream<Buffer>, corpus: StreamCorpus): void {
  let next = 0;
  const fill = () => {
    for (;;) {
      const body = corpus.bodies[next++ % corpus.bodies.length] as Buffer;
      if (!call.write(body)) break;
    }
    call.once('drain', fill);
  };
  call.write(corpus.first);
  fill();
}

function start({ target, params }: StartMessage): void {
  const corpus = buildCorpus(params);
  const client = () => new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  for (const stream of corpus.lrs) {
    const call = client().makeBidiStreamRequest<Buffer, Buffer>(lrsPath, raw, raw);
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    calls.push(call);
    pump(call, stream);
  }
  for (const stream of corpus.metrics) {
    const call = client().makeClientStreamRequest<Buffer, Buffer>(metricsPath, raw, raw, () => undefined);
    call.on('error', () => undefined);
    calls.push(call);
    pump(call, stream);
  }
  process.send?.({ type: 'started', streams: calls.length });
}

process.on('message', (message: StartMessage | { type: 'stop' }) => {
  if (message.type === 'start') start(message);
  else process.exit(0);
});
process.on('disconnect', () => process.exit(0));
