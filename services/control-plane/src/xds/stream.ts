import type { XdsTypeUrl } from '@switchyard/shared';
import type { NodeGroup } from '../resources.js';
import { nodeGroupOf, type XdsCache } from './cache.js';
import { noRevisionSynced, pendingFor, type Pending } from './type-state.js';
import { isXdsTypeUrl, pushOrder, type ErrorDetail, type NodeInfo, type XdsMode } from './types.js';
import { blame, type SentForBlame } from './rejections.js';
import { advance, newView, type NackRecord, type TypeView } from './view.js';

export type { DeliveryStatus, NackRecord, TypeView } from './view.js';

/** A response ready to write: the bytes may be shared with every other stream that gets the same. */
export interface OutgoingResponse {
  typeUrl: XdsTypeUrl;
  bytes: Buffer;
  nonce: string;
  version: string;
  resources: number;
  removed: number;
  /** performance.now() of the cache revision this response carries. */
  revisionTime: number;
}

export interface StreamHooks {
  send(response: OutgoingResponse): void;
  connected(node: NodeInfo, group: NodeGroup): void;
  acked(view: TypeView, version: string): void;
  nacked(view: TypeView, nack: NackRecord): void;
  /** A request for a type this server does not serve (e.g. VHDS or RTDS); logged once, otherwise ignored. */
  unknownType(typeUrl: string): void;
  staleNonce(typeUrl: XdsTypeUrl): void;
  /** The stream has something to send; the scheduler will call tick(). */
  dirty(): void;
}

/** A response and what a NACK of it can be matched against. */
export interface Transmission {
  response: OutgoingResponse;
  blame?: SentForBlame;
}

/**
 * What differs between State of the World and delta: how a request changes a stream's
 * subscriptions, and how what a client lacks becomes a response (sotw-policy.ts, delta-policy.ts).
 */
export interface ResponsePolicy<R> {
  readonly mode: XdsMode;
  /** Applies one request: node, ACK or NACK, subscription change. */
  handle(stream: XdsStream<R>, request: R): void;
  /** Finishes what waited for the cache to be ready. */
  resume(stream: XdsStream<R>): void;
  /** Whether this protocol can tell a client of this type that a resource is gone. */
  expressesRemovals(typeUrl: XdsTypeUrl): boolean;
  /** Additions and updates (and the removals, unless deferred until other types' additions went out). */
  upserts(view: TypeView, pending: Pending, deferRemovals: boolean): Transmission;
  /** Removals only, once no type has additions left to send. */
  removals(view: TypeView, pending: Pending): OutgoingResponse;
}

/** A request the stream cannot serve; the server ends the stream with INVALID_ARGUMENT. */
export class BadRequest extends Error {}

const nothingPending: Pending = Object.freeze({ upserts: [], replaced: [], removals: [] });

let nonceCounter = 0;
/** Nonces are unique process-wide, so one encoded response can be shared by many streams. */
export function nextNonce(): string {
  return (++nonceCounter).toString(36);
}

/**
 * The protocol state machine of one xDS stream (ADS or a single-type service), free of gRPC:
 * requests in, responses out through hooks. Its policy (SotW or delta) reads requests and
 * shapes responses; the stream keeps what both share: the node, one view per type, nonces,
 * ACK/NACK bookkeeping and the push order. What a stream sends is decided in tick(), which the
 * server's scheduler calls after requests and cache changes, so a burst of changes becomes
 * one response per type.
 */
export class XdsStream<R = unknown> {
  node: NodeInfo | undefined;
  group: NodeGroup | undefined;
  readonly views = new Map<XdsTypeUrl, TypeView>();
  /**
   * Delta requests received before the cache was ready, replayed in order once it is. SotW
   * requests are applied at once (their subscription is interned, so a thousand held
   * ten-thousand-name requests cost one set); only the version check waits (`versionToCheck`).
   */
  readonly waiting: R[] = [];
  private closed = false;

  constructor(
    readonly id: number,
    private readonly policy: ResponsePolicy<R>,
    readonly cache: XdsCache,
    readonly hooks: StreamHooks,
    /** Set for the per-type services (CDS, EDS…), whose requests may leave type_url empty. */
    readonly fixedType: XdsTypeUrl | undefined,
    readonly connectedAt: number,
    private readonly now: () => number = Date.now,
  ) {}

  get mode(): XdsMode {
    return this.policy.mode;
  }

  get heldRequests(): number {
    let held = this.waiting.length;
    for (const view of this.views.values()) if (view.versionToCheck !== undefined) held++;
    return held;
  }

  handle(request: R): void {
    this.policy.handle(this, request);
  }

  /** Some requested type has not had its first full config yet (a new stream, or a new type on it): the scheduler serves it after connected streams' updates. */
  get catchingUp(): boolean {
    for (const view of this.views.values()) if (view.synced === noRevisionSynced) return true;
    return false;
  }

  /** Finishes what waited for the cache to be ready. */
  resume(): void {
    this.policy.resume(this);
  }

  /** Every requested type is current for this client, nothing held, queued or unanswered. */
  inSync(minTypes = 1): boolean {
    if (this.heldRequests > 0 || this.views.size < minTypes) return false;
    for (const view of this.views.values()) {
      if (view.inflight !== undefined || view.mustRespond || view.synced !== view.state.revision || view.overrides.size > 0) return false;
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const view of this.views.values()) {
      view.state.views.delete(view);
      if (view.subscription) view.state.release(view.subscription);
    }
  }

  /** Takes the node from the first request; every stream must start with one. */
  identify(node: NodeInfo | undefined): void {
    if (this.node !== undefined) return;
    if (node === undefined || node.id === '') throw new BadRequest('the first request on a stream must carry a node with an id');
    this.node = node;
    this.group = nodeGroupOf(node);
    this.hooks.connected(node, this.group);
  }

  /** The view of the requested type, created on first use; undefined for a type not served. */
  viewFor(requestedType: string): TypeView | undefined {
    const typeUrl = requestedType === '' && this.fixedType !== undefined ? this.fixedType : requestedType;
    if (this.fixedType !== undefined && typeUrl !== this.fixedType) {
      throw new BadRequest(`this service serves ${this.fixedType}, not ${typeUrl}`);
    }
    if (!isXdsTypeUrl(typeUrl)) {
      this.hooks.unknownType(typeUrl);
      return undefined;
    }
    let view = this.views.get(typeUrl);
    if (view === undefined) {
      view = newView(typeUrl, this.cache.typeState(this.group!, typeUrl));
      view.state.views.add(view);
      this.views.set(typeUrl, view);
    }
    return view;
  }

  /**
   * ACK or NACK of the response in flight. A NACK is known by error_detail alone: grpc-js-xds
   * advances version_info even when it rejects part of a response. Either way the stream's view
   * has already moved on, so the rejected version is never sent again; the next response
   * for this type goes out only when the desired state changes.
   */
  settleInflight(view: TypeView, nonce: string, errorDetail: ErrorDetail | undefined): void {
    const inflight = view.inflight;
    if (inflight === undefined || nonce !== inflight.nonce) return;
    view.inflight = undefined;
    if (errorDetail !== undefined) {
      view.status = 'NACKED';
      view.nack = { version: inflight.version, nonce, errorDetail, at: this.now() };
      for (const { resource, had } of blame(inflight, errorDetail.message)) {
        view.rejected.set(resource.name, { version: resource.version, keeps: had });
      }
      this.hooks.nacked(view, view.nack);
    } else {
      view.status = 'ACKED';
      view.ackedVersion = inflight.version;
      view.ackedAt = this.now();
      this.hooks.acked(view, inflight.version);
    }
  }

  /**
   * Sends what this stream lacks: additions and updates in push order (CDS, EDS, SDS, LDS,
   * RDS), then removals in reverse order once no type has additions left to send, so a
   * route never points at a cluster the client was told to drop. One response per type is
   * in flight at a time; what changes meanwhile goes out, merged, when the client answers.
   */
  tick(): void {
    if (this.closed || !this.cache.ready || this.group === undefined) return;
    const plans = this.plans();
    const needsUpsert = (p: Plan) => p.pending.upserts.length > 0 || p.view.mustRespond;
    const withUpserts = new Set(plans.filter(needsUpsert).map((p) => p.view.typeUrl));
    for (const plan of plans) {
      const { view, pending } = plan;
      if (view.inflight !== undefined) continue;
      if (needsUpsert(plan)) {
        withUpserts.delete(view.typeUrl);
        const deferRemovals = pending.removals.length > 0 && withUpserts.size > 0;
        this.transmit(view, this.policy.upserts(view, pending, deferRemovals));
        advance(view, deferRemovals ? pending.removals : []);
        plan.done = !deferRemovals;
      } else if (pending.removals.length === 0 || !this.policy.expressesRemovals(view.typeUrl)) {
        // Nothing the client lacks (SotW EDS/RDS/SDS cannot even express a removal).
        advance(view, []);
        if (view.resumed) this.ackResumed(view);
        plan.done = true;
      }
    }
    if (withUpserts.size > 0) return;
    for (let i = plans.length - 1; i >= 0; i--) {
      const { view, pending, done } = plans[i]!;
      if (done || view.inflight !== undefined || pending.removals.length === 0) continue;
      this.transmit(view, { response: this.policy.removals(view, pending) });
      advance(view, []);
    }
  }

  /** What each subscribed type lacks, in push order. */
  private plans(): Plan[] {
    const plans: Plan[] = [];
    for (const typeUrl of pushOrder) {
      const view = this.views.get(typeUrl);
      if (view?.subscription === undefined) continue;
      plans.push({ view, pending: this.pendingOf(view), done: false });
    }
    return plans;
  }

  private pendingOf(view: TypeView): Pending {
    const sub = view.subscription!;
    if (view.synced === view.state.revision && view.overrides.size === 0) return nothingPending;
    if (view.overrides.size > 0) return pendingFor(view.state, view);
    return sub.memoized(`pending:${view.synced}`, () => pendingFor(view.state, view));
  }

  private transmit(view: TypeView, { response, blame: blameable = {} }: Transmission): void {
    view.latestNonce = response.nonce;
    view.sentVersion = response.version;
    view.inflight = {
      nonce: response.nonce,
      version: response.version,
      resources: response.resources,
      removed: response.removed,
      sentAt: this.now(),
      ...blameable,
    };
    view.mustRespond = false;
    view.resumed = false;
    this.hooks.send(response);
  }

  /**
   * A delta reconnect whose initial_resource_versions are all current is sent nothing, so it
   * never ACKs: it ACKed these versions on its previous stream (the delta twin of the SotW held-version check).
   */
  private ackResumed(view: TypeView): void {
    view.resumed = false;
    if (view.status !== 'REQUESTED') return;
    view.status = 'ACKED';
    view.ackedVersion = view.state.version;
    view.ackedAt = this.now();
  }
}

interface Plan {
  view: TypeView;
  pending: Pending;
  done: boolean;
}
