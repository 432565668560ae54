/**
 * The benchmark's load: a separate process (so its CPU and memory are not the sink's) that
 * opens every LRS and MetricsService stream on its own connection, as a fleet would, and
 * writes the pre-encoded corpus: first one message per stream per interval, each stream at
 * its own random phase (as Envoys and gRPC clients report); after a `flood` message, as fast
 * as flow control lets it (the sink's capacity).
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

/** One stream's sender: paced until told to flood. */
class Sender {
  private next = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: grpc.ClientWritableStream<Buffer>,
    private readonly corpus: StreamCorpus,
  ) {
    call.write(corpus.first);
  }

  private body(): Buffer {
    return this.corpus.bodies[this.next++ % this.corpus.bodies.length] as Buffer;
  }

  paced(intervalMs: number): void {
    this.timer = setTimeout(() => {
      this.call.write(this.body());
      this.timer = setInterval(() => this.call.write(this.body()), intervalMs);
    }, Math.random() * intervalMs);
  }

  flood(): void {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    const fill = () => {
      while (this.call.write(this.body()));
      this.call.once('drain', fill);
    };
    fill();
  }
}

const senders: Sender[] = [];

function start({ target, params }: StartMessage): void {
  const pump = (call: grpc.ClientWritableStream<Buffer>, corpus: StreamCorpus) => {
    const sender = new Sender(call, corpus);
    sender.paced(params.intervalMs);
    senders.push(sender);
  };
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

process.on('message', (message: StartMessage | { type: 'flood' } | { type: 'stop' }) => {
  if (message.type === 'start') start(message);
  else if (message.type === 'flood') for (const sender of senders) sender.flood();
  else process.exit(0);
});
process.on('disconnect', () => process.exit(0));
