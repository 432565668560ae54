import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { startEngine, type Engine } from './xds-bench-engine.js';
import { wallMs } from './xds-bench-protocol.js';
import { benchSnapshots } from './xds-bench-resources.js';

/**
 * Switchyard's xDS server as a process of its own, the counterpart of the go-control-plane
 * harness in bench/peers: it serves the benchmark's configuration, prints
 * {"xds_port", "control_port"} once it serves, and answers POST /eds?round=N on its control
 * port by setting round N's snapshot (cluster 0's endpoints changed), replying {"t0_ms"}.
 * `--workers N` serves from N xDS worker processes besides this one, as XDS_WORKERS does.
 */

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, clusters: { type: 'string' }, workers: { type: 'string', default: '0' } },
});
const workers = Number(values.workers);
if (!Number.isInteger(workers) || workers < 0) throw new Error('--workers must be 0 or more');
const clusters = Number(values.clusters);
if (!Number.isInteger(clusters) || clusters <= 0) throw new Error('--clusters must be a positive integer');
const snapshotForRound = benchSnapshots(clusters);

function handleEds(engine: Engine, request: IncomingMessage, response: ServerResponse): void {
  const round = Number(new URL(request.url ?? '/', 'http://control').searchParams.get('round'));
  request.resume();
  if (request.method !== 'POST' || !Number.isInteger(round) || round < 0) {
    response.writeHead(400).end('POST /eds?round=N with a round number');
    return;
  }
  const snapshot = snapshotForRound(round);
  const t0 = wallMs();
  engine.cache.setSnapshot(snapshot);
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ t0_ms: t0 }));
}

const engine = await startEngine(Number(values.port), snapshotForRound(0), workers);
const control = createServer((request, response) => handleEds(engine, request, response));
control.listen(0, '127.0.0.1', () => {
  const address = control.address();
  const controlPort = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ xds_port: engine.port, control_port: controlPort })}\n`);
});
