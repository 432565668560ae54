import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { lookupType, packAny, type XdsTypeUrl } from '@switchyard/shared';
import type { ProtoObject } from '../resources.js';
import type { ErrorDetail, NodeInfo } from './types.js';

/**
 * The wire side of the engine: each resource is encoded to bytes once per version, and
 * responses are assembled from those bytes, so a push to a thousand streams encodes nothing
 * per stream. Requests are read lazily: a State-of-the-World ACK repeats the whole
 * subscription (ten thousand EDS names from an Envoy), so its names are kept as raw bytes and
 * compared with memcmp before anyone decodes them.
 */

interface WireTypes {
  any: protobuf.Type;
  node: protobuf.Type;
  status: protobuf.Type;
  resource: protobuf.Type;
  response: FieldTags;
  deltaResponse: FieldTags;
  deltaResource: FieldTags;
  request: Record<'version_info' | 'node' | 'resource_names' | 'type_url' | 'response_nonce' | 'error_detail', number>;
  deltaRequestFields: FieldTags;
}

type FieldTags = Record<string, number>;

let wireTypes: WireTypes | undefined;

/** Field numbers come from Envoy's protos (reflection), never from constants typed here. */
function wire(): WireTypes {
  if (wireTypes !== undefined) return wireTypes;
  const fieldIds = (type: protobuf.Type): FieldTags => Object.fromEntries(type.fieldsArray.map((f) => [f.name, f.id]));
  const request = fieldIds(lookupType('envoy.service.discovery.v3.DiscoveryRequest'));
  wireTypes = {
    any: lookupType('google.protobuf.Any'),
    node: lookupType('envoy.config.core.v3.Node'),
    status: lookupType('google.rpc.Status'),
    resource: lookupType('envoy.service.discovery.v3.Resource'),
    deltaRequestFields: fieldIds(lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest')),
    response: fieldIds(lookupType('envoy.service.discovery.v3.DiscoveryResponse')),
    deltaResponse: fieldIds(lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse')),
    deltaResource: fieldIds(lookupType('envoy.service.discovery.v3.Resource')),
    request: {
      version_info: request.version_info!,
      node: request.node!,
      resource_names: request.resource_names!,
      type_url: request.type_url!,
      response_nonce: request.response_nonce!,
      error_detail: request.error_detail!,
    },
  };
  return wireTypes;
}

/** Loads the protos ahead of the first request (a cold load takes a while). */
export function warmUpEncoding(): void {
  wire();
}

const lengthDelimited = 2;
const tag = (field: number): number => (field << 3) | lengthDelimited;

/** A resource's version as a client holds it; `any` is absent when only the version is known (delta reconnect). */
export interface HeldResource {
  readonly name: string;
  readonly version: string;
  readonly any?: Uint8Array;
}

/** One resource at one version, encoded once and shared by every stream. */
export class EncodedResource implements HeldResource {
  private deltaEncoded: Uint8Array | undefined;

  constructor(
    readonly typeUrl: XdsTypeUrl,
    readonly name: string,
    /** Content hash: equal bytes, equal version, on every control-plane replica and restart. */
    readonly version: string,
    /** google.protobuf.Any bytes. */
    readonly any: Uint8Array,
    /** Four 32-bit lanes of the content hash, summed into set versions. */
    readonly lanes: readonly [number, number, number, number],
    /** What the translator gave, for the identity fast path of the next diff. */
    readonly source: ProtoObject,
    readonly json: string,
  ) {}

  /** The delta `Resource` wrapper (name, version, and the Any as it is), encoded on first use. */
  deltaBytes(): Uint8Array {
    const { resource, deltaResource } = wire();
    this.deltaEncoded ??= resource
      .encode({ name: this.name, version: this.version })
      .uint32(tag(deltaResource.resource!))
      .bytes(this.any)
      .finish();
    return this.deltaEncoded;
  }
}

export function encodeResource(typeUrl: XdsTypeUrl, name: string, source: ProtoObject, json = JSON.stringify(source)): EncodedResource {
  const packed = packAny(typeUrl, source);
  const any = wire().any.encode(packed).finish();
  const digest = createHash('sha256').update(name).update('\0').update(any).digest();
  const lanes = [digest.readUInt32LE(0), digest.readUInt32LE(4), digest.readUInt32LE(8), digest.readUInt32LE(12)] as const;
  return new EncodedResource(typeUrl, name, digest.toString('base64url', 0, 12), any, lanes, source, json);
}

/**
 * A version for a set of resources: the lane-wise sum of their hashes (order does not matter,
 * so it is computed without sorting) and the count.
 */
export function setVersion(resources: Iterable<{ lanes: readonly [number, number, number, number] }>): string {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let count = 0;
  for (const r of resources) {
    a = (a + r.lanes[0]) >>> 0;
    b = (b + r.lanes[1]) >>> 0;
    c = (c + r.lanes[2]) >>> 0;
    d = (d + r.lanes[3]) >>> 0;
    count++;
  }
  return `${count}-${[a, b, c, d].map((n) => n.toString(16).padStart(8, '0')).join('')}`;
}

function finish(writer: protobuf.Writer): Buffer {
  const bytes = writer.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface SotwResponseFields {
  versionInfo: string;
  typeUrl: XdsTypeUrl;
  nonce: string;
  resources: readonly HeldResource[];
}

/** A DiscoveryResponse assembled from pre-encoded Any bytes. */
export function encodeDiscoveryResponse(fields: SotwResponseFields): Buffer {
  const ids = wire().response;
  const w = protobuf.Writer.create();
  w.uint32(tag(ids.version_info!)).string(fields.versionInfo);
  for (const r of fields.resources) {
    if (r.any === undefined) throw new Error(`resource ${r.name} has no encoded bytes`);
    w.uint32(tag(ids.resources!)).bytes(r.any);
  }
  w.uint32(tag(ids.type_url!)).string(fields.typeUrl);
  w.uint32(tag(ids.nonce!)).string(fields.nonce);
  return finish(w);
}

export interface DeltaResponseFields {
  systemVersionInfo: string;
  typeUrl: XdsTypeUrl;
  nonce: string;
  resources: readonly EncodedResource[];
  removed: readonly string[];
}

/** A DeltaDiscoveryResponse assembled from pre-encoded Resource bytes. */
export function encodeDeltaResponse(fields: DeltaResponseFields): Buffer {
  const ids = wire().deltaResponse;
  const w = protobuf.Writer.create();
  w.uint32(tag(ids.system_version_info!)).string(fields.systemVersionInfo);
  for (const r of fields.resources) w.uint32(tag(ids.resources!)).bytes(r.deltaBytes());
  w.uint32(tag(ids.type_url!)).string(fields.typeUrl);
  for (const name of fields.removed) w.uint32(tag(ids.removed_resources!)).string(name);
  w.uint32(tag(ids.nonce!)).string(fields.nonce);
  return finish(w);
}

/** A request that could not be read; the stream counts it and ends. */
export interface MalformedRequest {
  malformed: string;
}

export function isMalformed(value: object): value is MalformedRequest {
  return 'malformed' in value;
}

/**
 * A State-of-the-World DiscoveryRequest. `names` holds the raw bytes of every resource_names
 * field (in order); `decodeNames()` turns them into strings only when the subscription changed.
 */
export interface SotwRequest {
  versionInfo: string;
  node: NodeInfo | undefined;
  typeUrl: string;
  nonce: string;
  errorDetail: ErrorDetail | undefined;
  names: Buffer;
  nameCount: number;
  /** Set when `names` is byte for byte a live subscription's: its interning key, and its bytes. */
  namesKey?: string;
  knownNames?: Buffer;
}

export function decodeDiscoveryRequest(buf: Buffer): SotwRequest | MalformedRequest {
  try {
    const ids = wire().request;
    const reader = protobuf.Reader.create(buf);
    const request: SotwRequest = {
      versionInfo: '',
      node: undefined,
      typeUrl: '',
      nonce: '',
      errorDetail: undefined,
      names: Buffer.alloc(0),
      nameCount: 0,
    };
    const names = new NameSpan();
    while (reader.pos < reader.len) {
      const fieldStart = reader.pos;
      const fieldTag = reader.uint32();
      switch (fieldTag >>> 3) {
        case ids.version_info:
          request.versionInfo = reader.string();
          break;
        case ids.node:
          request.node = nodeInfo(wire().node.decode(reader, reader.uint32()));
          break;
        case ids.resource_names:
          names.read(buf, reader, fieldStart, fieldTag);
          break;
        case ids.type_url:
          request.typeUrl = reader.string();
          break;
        case ids.response_nonce:
          request.nonce = reader.string();
          break;
        case ids.error_detail:
          request.errorDetail = errorDetail(wire().status.decode(reader, reader.uint32()));
          break;
        default:
          reader.skipType(fieldTag & 7);
      }
    }
    request.names = names.bytes(buf);
    request.nameCount = names.count;
    if (names.known !== undefined) {
      request.namesKey = names.known.key;
      request.knownNames = names.known.raw;
    }
    return request;
  } catch (err) {
    return { malformed: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Raw resource_names spans of live subscriptions worth recognising whole. An Envoy repeats
 * every EDS name in every ACK (10,000 names: 200 KB); walking them name by name costs far more
 * than comparing the span with the one it sent last time.
 */
const knownSpans = new Map<Buffer, { count: number; key: string }>();
const maxKnownSpans = 16;
const minKnownSpanBytes = 1024;

/** Registers a subscription's raw names (with their count and interning key) for whole-span recognition. */
export function rememberNameSpan(raw: Buffer, count: number, key: string): void {
  if (raw.length < minKnownSpanBytes) return;
  if (knownSpans.size >= maxKnownSpans) knownSpans.delete(knownSpans.keys().next().value!);
  knownSpans.set(raw, { count, key });
}

export function forgetNameSpan(raw: Buffer): void {
  knownSpans.delete(raw);
}

function knownSpanAt(buf: Buffer, start: number, fieldTag: number): { raw: Buffer; count: number; key: string } | undefined {
  for (const [raw, known] of knownSpans) {
    const end = start + raw.length;
    // Equal bytes, and no further name right after (else it was only a prefix).
    if (end <= buf.length && buf[end] !== fieldTag && buf.compare(raw, 0, raw.length, start, end) === 0) return { raw, ...known };
  }
  return undefined;
}

/**
 * The raw bytes of a request's repeated names field (from its first occurrence to its last),
 * with their count; a span that is byte for byte a live subscription's is skipped in one
 * memcmp and remembered as `known`.
 */
class NameSpan {
  count = 0;
  known: { raw: Buffer; count: number; key: string } | undefined;
  private start = -1;
  private end = -1;

  read(buf: Buffer, reader: protobuf.Reader, fieldStart: number, fieldTag: number): void {
    const known = this.start < 0 ? knownSpanAt(buf, fieldStart, fieldTag) : undefined;
    if (known !== undefined) {
      this.known = known;
      this.start = fieldStart;
      this.end = fieldStart + known.raw.length;
      this.count += known.count;
      reader.pos = this.end;
      return;
    }
    reader.skipType(fieldTag & 7);
    if (this.start < 0) this.start = fieldStart;
    this.end = reader.pos;
    this.count++;
  }

  bytes(buf: Buffer): Buffer {
    return this.start < 0 ? Buffer.alloc(0) : buf.subarray(this.start, this.end);
  }
}

/** The resource names held in a request's raw names bytes (other interleaved fields skipped). */
export function decodeNames(raw: Uint8Array): string[] {
  const field = wire().request.resource_names;
  const reader = protobuf.Reader.create(raw);
  const names: string[] = [];
  while (reader.pos < reader.len) {
    const fieldTag = reader.uint32();
    if (fieldTag >>> 3 === field) names.push(reader.string());
    else reader.skipType(fieldTag & 7);
  }
  return names;
}

/**
 * A delta DeltaDiscoveryRequest. Its resource_names_subscribe are kept as raw bytes like a
 * State-of-the-World request's names (`subscribeNames`, read with `decodeNames()`): a new
 * Envoy's first EDS request subscribes to every cluster (10,000 names), and a fleet sends the
 * same bytes, recognised whole (`subscribeKey`) instead of decoded, sorted and hashed per stream.
 */
export interface DeltaRequest {
  node: NodeInfo | undefined;
  typeUrl: string;
  subscribeNames: Buffer;
  subscribeCount: number;
  /** Set when `subscribeNames` is byte for byte a live subscription's: its interning key. */
  subscribeKey?: string;
  unsubscribe: string[];
  initialVersions: Record<string, string>;
  nonce: string;
  errorDetail: ErrorDetail | undefined;
}

export function decodeDeltaRequest(buf: Buffer): DeltaRequest | MalformedRequest {
  try {
    const ids = wire().deltaRequestFields;
    const reader = protobuf.Reader.create(buf);
    const request: DeltaRequest = {
      node: undefined,
      typeUrl: '',
      subscribeNames: Buffer.alloc(0),
      subscribeCount: 0,
      unsubscribe: [],
      // No prototype: a client's key '__proto__' is a name like any other.
      initialVersions: Object.create(null) as Record<string, string>,
      nonce: '',
      errorDetail: undefined,
    };
    const subscribe = new NameSpan();
    while (reader.pos < reader.len) {
      const fieldStart = reader.pos;
      const fieldTag = reader.uint32();
      switch (fieldTag >>> 3) {
        case ids.node:
          request.node = nodeInfo(wire().node.decode(reader, reader.uint32()));
          break;
        case ids.type_url:
          request.typeUrl = reader.string();
          break;
        case ids.resource_names_subscribe:
          subscribe.read(buf, reader, fieldStart, fieldTag);
          break;
        case ids.resource_names_unsubscribe:
          request.unsubscribe.push(reader.string());
          break;
        case ids.initial_resource_versions:
          readVersionEntry(reader, request.initialVersions);
          break;
        case ids.response_nonce:
          request.nonce = reader.string();
          break;
        case ids.error_detail:
          request.errorDetail = errorDetail(wire().status.decode(reader, reader.uint32()));
          break;
        default:
          reader.skipType(fieldTag & 7);
      }
    }
    request.subscribeNames = subscribe.bytes(buf);
    request.subscribeCount = subscribe.count;
    if (subscribe.known !== undefined) request.subscribeKey = subscribe.known.key;
    return request;
  } catch (err) {
    return { malformed: err instanceof Error ? err.message : String(err) };
  }
}

/** One map<string, string> entry (key = 1, value = 2, as protobuf encodes every map). */
function readVersionEntry(reader: protobuf.Reader, into: Record<string, string>): void {
  const end = reader.uint32() + reader.pos;
  let key = '';
  let value = '';
  while (reader.pos < end) {
    const entryTag = reader.uint32();
    if (entryTag >>> 3 === 1) key = reader.string();
    else if (entryTag >>> 3 === 2) value = reader.string();
    else reader.skipType(entryTag & 7);
  }
  into[key] = value;
}

function nodeInfo(message: protobuf.Message): NodeInfo {
  const n = message as unknown as { id?: string; cluster?: string; user_agent_name?: string; user_agent_version?: string };
  return { id: n.id ?? '', cluster: n.cluster ?? '', userAgentName: n.user_agent_name ?? '', userAgentVersion: n.user_agent_version ?? '' };
}

function errorDetail(message: protobuf.Message): ErrorDetail | undefined {
  const s = message as unknown as { code?: number; message?: string };
  // An error_detail that is present but empty (code 0, no message) is not a NACK.
  if (!s.code && !s.message) return undefined;
  return { code: s.code ?? 0, message: s.message ?? '' };
}
