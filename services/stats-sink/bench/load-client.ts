/**
 * The benchmark's load: a separate process (so its CPU and memory are not the sink's) that
 * opens every LRS and MetricsService stream on its own connection, as a fleet would, and
 * writes the pre-encoded corpus: one message per stream per interval, each stream at its own
 * random phase (as Envoys and gRPC clients report), or, for the streams of the source told to
 * `flood`, as fast as flow control lets them (the sink's capacity) while the others pause.
 */
import * as grpc from '@grpc/grpc-js';
import type { Source } from '../src/reports.js';
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

/** One stream's sender: one message per interval, or as fast as flow control allows. */
class Sender {
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  private flooding = false;

  constructor(
    readonly source: Source,
    private readonly call: grpc.ClientWritableStream<Buffer>,
    private readonly corpus: StreamCorpus,
    private readonly intervalMs: number,
  ) {
    call.write(corpus.first);
  }

  private body(): Buffer {
    return this.corpus.bodies[this.next++ % this.corpus.bodies.length] as Buffer;
  }

  paced(): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.call.write(this.body());
      this.timer = setInterval(() => this.call.write(this.body()), this.intervalMs);
    }, Math.random() * this.intervalMs);
  }

  /** The next message goes out once the previous one is handed to HTTP/2, so no backlog builds up in this process. */
  flood(): void {
    this.stop();
    this.flooding = true;
    const send = () => {
      if (this.flooding) this.call.write(this.body(), send);
    };
    send();
  }

  pause(): void {
    this.stop();
  }

  private stop(): void {
    this.flooding = false;
    clearTimeout(this.timer);
    clearInterval(this.timer);
  }
}

const senders: Sender[] = [];

function start({ target, params }: StartMessage): void {
  const pump = (source: Source, call: grpc.ClientWritableStream<Buffer>, corpus: StreamCorpus) => {
    const sender = new Sender(source, call, corpus, params.intervalMs);
    sender.paced();
    senders.push(sender);
  };
  const corpus = buildCorpus(params);
  // One connection per stream, as a fleet has; no retry buffer, whose early write callbacks would
  // let a flooding stream queue without bound in this process instead of waiting for HTTP/2 flow control.
  const client = () =>
    new grpc.Client(target, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.enable_retries': 0 });
  for (const stream of corpus.lrs) {
    const call = client().makeBidiStreamRequest<Buffer, Buffer>(lrsPath, raw, raw);
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    calls.push(call);
    pump('lrs', call, stream);
  }
  for (const stream of corpus.metrics) {
    const call = client().makeClientStreamRequest<Buffer, Buffer>(metricsPath, raw, raw, () => undefined);
    call.on('error', () => undefined);
    calls.push(call);
    pump('metrics', call, stream);
  }
  process.send?.({ type: 'started', streams: calls.length });
}

/** `flood` makes the streams of one source send as fast as they can and pauses the others; `pause` pauses all (streams stay open). */
process.on('message', (message: StartMessage | { type: 'flood'; source: Source } | { type: 'pause' } | { type: 'stop' }) => {
  if (message.type === 'start') start(message);
  else if (message.type === 'flood') {
    for (const sender of senders) {
      if (sender.source === message.source) sender.flood();
      else sender.pause();
    }
  } else if (message.type === 'pause') for (const sender of senders) sender.pause();
  else process.exit(0);
});
process.on('disconnect', () => process.exit(0));
