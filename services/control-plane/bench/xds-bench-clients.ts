import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { TypeUrl, lookupType } from '@switchyard/shared';
import {
  adsPath,
  bytesBidi,
  clusterNameOf,
  rawPath,
  wallMs,
  type ClientProcessOptions,
  type FromClients,
  type ToClients,
} from './xds-bench-protocol.js';

/**
 * The benchmark's client process: N Envoy-like State-of-the-World ADS clients, each on its own
 * connection (CDS wildcard, then EDS for every cluster by name, ACKing every response with the
 * full name list as Envoy does), plus N bare streams to the transport-floor server that
 * answer each message with an ACK of the same size.
 */

const options = JSON.parse(process.argv[2]!) as ClientProcessOptions;
const send = (message: FromClients) => process.send!(message);

const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const responseFields = Object.fromEntries(
  lookupType('envoy.service.discovery.v3.DiscoveryResponse').fieldsArray.map((f) => [f.name, f.id]),
);

function encodeRequest(fields: Record<string, unknown>): Buffer {
  const bytes = DiscoveryRequest.encode(DiscoveryRequest.fromObject(fields)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The subscription is the same for every client: encoded once, appended to each EDS request. */
const edsNames = encodeRequest({
  resource_names: options.edsSubscription === 'names' ? Array.from({ length: options.clusters }, (_, i) => clusterNameOf(i)) : ['*'],
});

interface ParsedResponse {
  version: string;
  nonce: string;
  typeUrl: string;
  resources: number;
}

/** Reads the response envelope only; resources are counted, not decoded (as a fast client would). */
function parseResponse(buf: Buffer): ParsedResponse {
  const reader = protobuf.Reader.create(buf);
  const parsed: ParsedResponse = { version: '', nonce: '', typeUrl: '', resources: 0 };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    switch (tag >>> 3) {
      case responseFields.version_info:
        parsed.version = reader.string();
        break;
      case responseFields.nonce:
        parsed.nonce = reader.string();
        break;
      case responseFields.type_url:
        parsed.typeUrl = reader.string();
        break;
      case responseFields.resources:
        parsed.resources++;
        reader.skipType(tag & 7);
        break;
      default:
        reader.skipType(tag & 7);
    }
  }
  return parsed;
}

const AdsClient = grpc.makeGenericClientConstructor(bytesBidi(adsPath), 'Ads');
const RawClient = grpc.makeGenericClientConstructor(bytesBidi(rawPath), 'Raw');
const channelOptions: grpc.ChannelOptions = {
  // One connection per client, as N separate Envoys would have.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
  'grpc.initial_reconnect_backoff_ms': 250,
  'grpc.max_reconnect_backoff_ms': 2000,
  // Envoy's HTTP/2 windows are large (256 MiB by default); grpc-js's 64 KiB default would make
  // a full-config transfer wait for a window update every 64 KiB.
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
};
type Duplex = grpc.ClientDuplexStream<Buffer, Buffer>;
const openStream = (client: grpc.Client): Duplex => (client as unknown as { Stream(): Duplex }).Stream();

let armed: { target: 'xds' | 'raw'; round: number; count: number; first: number; last: number } | undefined;
function record(target: 'xds' | 'raw', lastRound: number): number {
  if (armed === undefined || armed.target !== target || lastRound >= armed.round) return lastRound;
  const round = armed.round;
  const now = wallMs();
  armed.first = armed.count === 0 ? now : Math.min(armed.first, now);
  armed.last = Math.max(armed.last, now);
  armed.count++;
  if (armed.count === options.clients) {
    send({ kind: 'received', target, round, first: armed.first, last: armed.last });
    armed = undefined;
  }
  return round;
}

let synced = 0;
let stormPending: { cold: boolean } | undefined;
function markSynced(): void {
  synced++;
  if (synced === options.clients) {
    if (stormPending) send({ kind: 'stormDone', at: wallMs() });
    else send({ kind: 'synced', at: wallMs(), clients: synced });
    stormPending = undefined;
  }
}

class XdsBenchClient {
  private readonly client: grpc.Client;
  private call: Duplex | undefined;
  private cds = { version: '', count: 0 };
  private eds = { version: '', count: 0 };
  private isSynced = false;
  private round = 0;
  private stopping = false;

  constructor(private readonly index: number) {
    this.client = new AdsClient(`127.0.0.1:${options.xdsPort}`, grpc.credentials.createInsecure(), channelOptions);
  }

  start(): void {
    const call = openStream(this.client);
    this.call = call;
    call.on('data', (buf: Buffer) => this.onResponse(buf));
    call.on('error', () => undefined);
    call.on('status', () => {
      if (!this.stopping && this.call === call) this.start();
    });
    const node = { id: `bench-${this.index}`, cluster: 'bench', user_agent_name: 'envoy' };
    call.write(encodeRequest({ node, type_url: TypeUrl.Cluster, version_info: this.cds.version }));
    // An Envoy that holds clusters asks for their endpoints right away on a new stream.
    if (this.cds.count > 0) call.write(this.edsRequest(''));
  }

  private edsRequest(nonce: string): Buffer {
    return Buffer.concat([
      encodeRequest({ type_url: TypeUrl.ClusterLoadAssignment, version_info: this.eds.version, response_nonce: nonce }),
      edsNames,
    ]);
  }

  private onResponse(buf: Buffer): void {
    const r = parseResponse(buf);
    if (r.typeUrl === TypeUrl.Cluster) {
      const first = this.cds.count === 0;
      this.cds = { version: r.version, count: r.resources };
      this.call!.write(encodeRequest({ type_url: TypeUrl.Cluster, version_info: r.version, response_nonce: r.nonce }));
      if (first) this.call!.write(this.edsRequest(''));
    } else if (r.typeUrl === TypeUrl.ClusterLoadAssignment) {
      this.eds = { version: r.version, count: this.eds.count + r.resources };
      this.round = record('xds', this.round);
      this.call!.write(this.edsRequest(r.nonce));
    }
    if (!this.isSynced && this.cds.count === options.clusters && this.eds.count >= options.clusters) {
      this.isSynced = true;
      markSynced();
    }
  }

  /** A control-plane restart: the stream drops; a cold client also forgets what it held. */
  storm(cold: boolean): void {
    this.isSynced = !cold;
    if (cold) {
      this.cds = { version: '', count: 0 };
      this.eds = { version: '', count: 0 };
    }
  }

  stop(): void {
    this.stopping = true;
    this.call?.cancel();
    this.client.close();
  }
}

class RawBenchClient {
  private readonly client: grpc.Client;
  private readonly call: Duplex;
  private round = 0;

  constructor() {
    this.client = new RawClient(`127.0.0.1:${options.rawPort}`, grpc.credentials.createInsecure(), channelOptions);
    this.call = openStream(this.client);
    this.call.on('error', () => undefined);
    this.call.on('data', (buf: Buffer) => {
      // The same work as an xDS client: read the envelope, answer with an ACK of the same size.
      const r = parseResponse(buf);
      this.round = record('raw', this.round);
      this.call.write(Buffer.concat([encodeRequest({ type_url: r.typeUrl, version_info: r.version, response_nonce: r.nonce }), edsNames]));
    });
    this.call.write(encodeRequest({ type_url: TypeUrl.ClusterLoadAssignment }));
  }

  stop(): void {
    this.call.cancel();
    this.client.close();
  }
}

const xdsClients = Array.from({ length: options.clients }, (_, i) => new XdsBenchClient(i));
const rawClients = Array.from({ length: options.clients }, () => new RawBenchClient());
for (const c of xdsClients) c.start();

process.on('message', (message: ToClients) => {
  switch (message.kind) {
    case 'arm':
      armed = { target: message.target, round: message.round, count: 0, first: 0, last: 0 };
      send({ kind: 'armed', target: message.target, round: message.round });
      break;
    case 'storm':
      synced = message.cold ? 0 : options.clients;
      stormPending = { cold: message.cold };
      for (const c of xdsClients) c.storm(message.cold);
      send({ kind: 'stormArmed' });
      break;
    case 'stop':
      send({ kind: 'stats', rssMb: process.resourceUsage().maxRSS / 1024 });
      for (const c of [...xdsClients, ...rawClients]) c.stop();
      setImmediate(() => process.exit(0));
      break;
  }
});
