import type { XdsTypeUrl } from '@switchyard/shared';
import type { NodeGroup } from '../resources.js';
import { nodeGroupOf, type XdsCache } from './cache.js';
import {
  decodeNames,
  encodeDeltaResponse,
  encodeDiscoveryResponse,
  type DeltaRequest,
  type EncodedResource,
  type HeldResource,
  type SotwRequest,
} from './encoding.js';
import {
  emptyView,
  nameSetKey,
  pendingFor,
  rawNamesKey,
  type Pending,
  type Subscription,
  type SyncedView,
  type TypeState,
} from './type-state.js';
import { isFullSetType, isXdsTypeUrl, pushOrder, type ErrorDetail, type NodeInfo, type XdsMode } from './types.js';
import { blame, keepRejected, type RejectedResource, type SentForBlame } from './rejections.js';

/** CSDS words for where a type stands with one client. */
export type DeliveryStatus = 'REQUESTED' | 'ACKED' | 'NACKED';

export interface NackRecord {
  version: string;
  nonce: string;
  errorDetail: ErrorDetail;
  at: number;
}

interface Inflight extends SentForBlame {
  nonce: string;
  version: string;
  resources: number;
  removed: number;
  sentAt: number;
}

/** One type on one stream: the synced view plus the protocol state (nonces, ACKs, NACKs). */
export interface TypeView extends SyncedView {
  readonly typeUrl: XdsTypeUrl;
  readonly state: TypeState;
  status: DeliveryStatus;
  latestNonce: string;
  inflight: Inflight | undefined;
  sentVersion: string;
  ackedVersion: string;
  ackedAt: number | undefined;
  nack: NackRecord | undefined;
  /**
   * A response must go out even if nothing changed: SotW CDS/LDS after a subscription change
   * (the full set tells the client what exists), and a delta wildcard's first request (an
   * empty answer ends the client's initial fetch instead of its timeout).
   */
  mustRespond: boolean;
  /** Legacy wildcard: an empty first CDS/LDS request means "everything" only until names were given. */
  everNamed: boolean;
  /** SotW first request that arrived before the cache was ready: its version_info, checked once ready. */
  versionToCheck: string | undefined;
  /** Delta first request listed initial_resource_versions: a reconnect that may already hold everything. */
  resumed: boolean;
  /**
   * SotW CDS/LDS: resources the client rejected, by name. A full set must name every resource,
   * so until the desired version changes, later sets carry what the client kept instead of the
   * version it rejected — otherwise every unrelated change would be NACKed again.
   */
  rejected: Map<string, RejectedResource>;
}

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
  /** A request for a type this server does not serve (e.g. VHDS); logged once, otherwise ignored. */
  unknownType(typeUrl: string): void;
  staleNonce(typeUrl: XdsTypeUrl): void;
  /** The stream has something to send; the scheduler will call tick(). */
  dirty(): void;
}

/** A request the stream cannot serve; the server ends the stream with INVALID_ARGUMENT. */
export class BadRequest extends Error {}

const nothingPending: Pending = Object.freeze({ upserts: [], replaced: [], removals: [] });

let nonceCounter = 0;
/** Nonces are unique process-wide, so one encoded response can be shared by many streams. */
function nextNonce(): string {
  return (++nonceCounter).toString(36);
}

/**
 * The protocol state machine of one xDS stream (ADS or a single-type service, SotW or delta),
 * free of gRPC: requests in, responses out through hooks. What a stream sends is decided in
 * tick(), which the server's scheduler calls after requests and cache changes, so a burst of
 * changes becomes one response per type.
 */
export class XdsStream {
  node: NodeInfo | undefined;
  group: NodeGroup | undefined;
  readonly views = new Map<XdsTypeUrl, TypeView>();
  /**
   * Delta requests received before the cache was ready, replayed in order once it is. SotW
   * requests are applied at once (their subscription is interned, so a thousand held
   * ten-thousand-name requests cost one set); only the version check waits (`versionToCheck`).
   */
  private readonly held: DeltaRequest[] = [];
  private closed = false;

  constructor(
    readonly id: number,
    readonly mode: XdsMode,
    private readonly cache: XdsCache,
    private readonly hooks: StreamHooks,
    /** Set for the per-type services (CDS, EDS…), whose requests may leave type_url empty. */
    readonly fixedType: XdsTypeUrl | undefined,
    readonly connectedAt: number,
    private readonly now: () => number = Date.now,
  ) {}

  get heldRequests(): number {
    let held = this.held.length;
    for (const view of this.views.values()) if (view.versionToCheck !== undefined) held++;
    return held;
  }

  handleSotw(req: SotwRequest): void {
    this.identify(req.node);
    const view = this.viewFor(req.typeUrl);
    if (view === undefined) return;
    if (req.nonce !== '' && req.nonce !== view.latestNonce) {
      // Stale: the client has not seen our latest response yet; its answer to that will follow.
      this.hooks.staleNonce(view.typeUrl);
      return;
    }
    this.settleInflight(view, req.nonce, req.errorDetail);
    this.updateSotwSubscription(view, req);
    this.hooks.dirty();
  }

  handleDelta(req: DeltaRequest): void {
    this.identify(req.node);
    if (!this.cache.ready) {
      this.held.push(req);
      return;
    }
    const view = this.viewFor(req.typeUrl);
    if (view === undefined) return;
    if (req.nonce !== '' && req.nonce !== view.latestNonce) this.hooks.staleNonce(view.typeUrl);
    else this.settleInflight(view, req.nonce, req.errorDetail);
    // Subscription changes count even with a stale nonce: the client has already switched.
    this.updateDeltaSubscription(view, req);
    this.hooks.dirty();
  }

  /** Finishes what waited for the cache to be ready. */
  resume(): void {
    for (const view of this.views.values()) {
      if (view.versionToCheck === undefined) continue;
      this.checkHeldVersion(view, view.versionToCheck);
      view.versionToCheck = undefined;
    }
    for (const req of this.held.splice(0)) this.handleDelta(req);
  }

  /** A client reconnecting with the version it holds gets nothing it already has. */
  private checkHeldVersion(view: TypeView, versionInfo: string): void {
    const holdsCurrent = versionInfo !== '' && versionInfo === view.subscription!.contentVersion();
    view.synced = holdsCurrent ? view.state.revision : emptyView;
    view.mustRespond = isFullSetType(view.typeUrl) && !holdsCurrent;
    // It ACKed this version on its previous stream; without that, a restart would show it pending for ever.
    if (holdsCurrent) {
      view.ackedVersion = versionInfo;
      view.status = 'ACKED';
    }
  }

  /**
   * A delta reconnect whose initial_resource_versions are all current is sent nothing, so it
   * never ACKs: it ACKed these versions on its previous stream (the delta twin of checkHeldVersion).
   */
  private ackResumed(view: TypeView): void {
    view.resumed = false;
    if (view.status !== 'REQUESTED') return;
    view.status = 'ACKED';
    view.ackedVersion = view.state.version;
    view.ackedAt = this.now();
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

  private identify(node: NodeInfo | undefined): void {
    if (this.node !== undefined) return;
    if (node === undefined || node.id === '') throw new BadRequest('the first request on a stream must carry a node with an id');
    this.node = node;
    this.group = nodeGroupOf(node);
    this.hooks.connected(node, this.group);
  }

  private viewFor(requestedType: string): TypeView | undefined {
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
      const state = this.cache.typeState(this.group!, typeUrl);
      view = {
        typeUrl,
        state,
        subscription: undefined,
        synced: emptyView,
        overrides: new Map(),
        status: 'REQUESTED',
        latestNonce: '',
        inflight: undefined,
        sentVersion: '',
        ackedVersion: '',
        ackedAt: undefined,
        nack: undefined,
        mustRespond: false,
        everNamed: false,
        versionToCheck: undefined,
        resumed: false,
        rejected: new Map(),
      };
      state.views.add(view);
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
  private settleInflight(view: TypeView, nonce: string, errorDetail: ErrorDetail | undefined): void {
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

  private updateSotwSubscription(view: TypeView, req: SotwRequest): void {
    const current = view.subscription;
    if (current?.raw !== undefined && (req.knownNames === current.raw || current.raw.equals(req.names))) return;
    const state = view.state;
    const full = isFullSetType(view.typeUrl);
    let next: Subscription;
    if (req.nameCount === 0) {
      // Legacy wildcard: an empty first CDS/LDS request means everything, until names were given.
      next = full && !view.everNamed ? state.wildcard : state.intern('raw:none', () => ({ names: [], wildcard: false }));
    } else {
      next = state.intern(
        req.namesKey ?? rawNamesKey(req.names),
        () => {
          const names = decodeNames(req.names);
          const wildcard = names.includes('*');
          return { names: names.filter((n) => n !== '*'), wildcard };
        },
        req.names,
      );
      if (!next.wildcard) view.everNamed = true;
    }
    if (next === current) return;
    this.setSubscription(view, next);
    if (current === undefined) {
      if (this.cache.ready) this.checkHeldVersion(view, req.versionInfo);
      else view.versionToCheck = req.versionInfo;
    } else if (full) {
      view.mustRespond = true;
    } else {
      this.trackNewNames(view, current, next);
    }
  }

  private updateDeltaSubscription(view: TypeView, req: DeltaRequest): void {
    const current = view.subscription;
    const first = current === undefined;
    // A plain ACK changes nothing; skip copying and re-keying a large name set.
    if (!first && req.subscribe.length === 0 && req.unsubscribe.length === 0) return;
    let wildcard = current?.wildcard ?? (req.subscribe.length === 0 && isFullSetType(view.typeUrl));
    const names = new Set(current?.names ?? []);
    if (first) {
      for (const [name, version] of Object.entries(req.initialVersions)) view.overrides.set(name, { name, version });
      view.resumed = view.overrides.size > 0;
    }
    for (const name of req.subscribe) {
      if (name === '*') wildcard = true;
      else names.add(name);
    }
    for (const name of req.unsubscribe) {
      if (name === '*') wildcard = false;
      else names.delete(name);
      // The client forgets what it unsubscribed from; a later subscribe must send it again.
      if (name !== '*' && !first) view.overrides.delete(name);
    }
    const state = view.state;
    const next = state.intern(`${wildcard ? '*' : ''}${nameSetKey(names)}`, () => ({ names, wildcard }));
    if (next === current) return;
    this.setSubscription(view, next);
    if (current !== undefined) this.trackNewNames(view, current, next);
    else view.mustRespond = next.wildcard;
  }

  private setSubscription(view: TypeView, next: Subscription): void {
    next.refs++;
    if (view.subscription !== undefined) view.state.release(view.subscription);
    view.subscription = next;
  }

  /** Names newly subscribed are held by the client at no version, whatever the synced revision says. */
  private trackNewNames(view: TypeView, before: Subscription, after: Subscription): void {
    if (view.synced === emptyView) return;
    if (after.wildcard && !before.wildcard) {
      view.synced = emptyView;
      view.overrides.clear();
      return;
    }
    for (const name of after.names) if (!before.includes(name) && !view.overrides.has(name)) view.overrides.set(name, null);
    for (const name of before.names) if (!after.includes(name)) view.overrides.delete(name);
  }

  /**
   * Sends what this stream lacks: additions and updates in push order (CDS, EDS, SDS, LDS,
   * RDS), then removals in reverse order once no type has additions left to send, so a
   * route never points at a cluster the client was told to drop. One response per type is
   * in flight at a time; what changes meanwhile goes out, merged, when the client answers.
   */
  tick(): void {
    if (this.closed || !this.cache.ready || this.group === undefined) return;
    const plans: { view: TypeView; pending: Pending; done: boolean }[] = [];
    for (const typeUrl of pushOrder) {
      const view = this.views.get(typeUrl);
      if (view?.subscription === undefined) continue;
      plans.push({ view, pending: this.pendingOf(view), done: false });
    }
    const needsUpsert = (p: (typeof plans)[number]) => p.pending.upserts.length > 0 || p.view.mustRespond;
    const withUpserts = new Set(plans.filter(needsUpsert).map((p) => p.view.typeUrl));
    for (const plan of plans) {
      const { view, pending } = plan;
      if (view.inflight !== undefined) continue;
      if (needsUpsert(plan)) {
        withUpserts.delete(view.typeUrl);
        const deferRemovals = pending.removals.length > 0 && withUpserts.size > 0;
        this.sendUpserts(view, pending, deferRemovals);
        plan.done = !deferRemovals;
      } else if (pending.removals.length === 0 || (this.mode === 'sotw' && !isFullSetType(view.typeUrl))) {
        // Nothing the client lacks (SotW EDS/RDS/SDS cannot even express a removal).
        this.advance(view, []);
        if (view.resumed) this.ackResumed(view);
        plan.done = true;
      }
    }
    if (withUpserts.size > 0) return;
    for (let i = plans.length - 1; i >= 0; i--) {
      const plan = plans[i]!;
      if (plan.done || plan.view.inflight !== undefined || plan.pending.removals.length === 0) continue;
      this.sendRemovals(plan.view, plan.pending);
    }
  }

  private pendingOf(view: TypeView): Pending {
    const sub = view.subscription!;
    if (view.synced === view.state.revision && view.overrides.size === 0) return nothingPending;
    if (view.overrides.size > 0) return pendingFor(view.state, view);
    return sub.memoized(`pending:${view.synced}`, () => pendingFor(view.state, view));
  }

  private sendUpserts(view: TypeView, pending: Pending, deferRemovals: boolean): void {
    const sub = view.subscription!;
    const retained = deferRemovals ? pending.removals : [];
    const shareable = view.overrides.size === 0;
    if (this.mode === 'sotw' && isFullSetType(view.typeUrl)) {
      const full = this.fullSetResponse(view, retained);
      this.transmit(view, full, { sent: full.sent, pending });
    } else if (this.mode === 'sotw') {
      const build = () => this.sotwResponse(view, pending.upserts, '');
      this.transmit(view, shareable ? sub.memoized(`sotw:${view.synced}`, build) : build());
    } else {
      const removed = deferRemovals ? [] : pending.removals.map((r) => r.name);
      const build = () => this.deltaResponse(view, pending.upserts, removed);
      this.transmit(view, shareable ? sub.memoized(`delta:${view.synced}:${deferRemovals}`, build) : build());
    }
    this.advance(view, retained);
  }

  private sendRemovals(view: TypeView, pending: Pending): void {
    const sub = view.subscription!;
    const shareable = view.overrides.size === 0;
    let response: OutgoingResponse;
    if (this.mode === 'sotw') {
      // Full-set type: the set without the removed resources is the removal.
      response = this.fullSetResponse(view, []);
    } else {
      const build = () =>
        this.deltaResponse(
          view,
          [],
          pending.removals.map((r) => r.name),
        );
      response = shareable ? sub.memoized(`delta-removals:${view.synced}`, build) : build();
    }
    this.transmit(view, response);
    this.advance(view, []);
  }

  /**
   * A CDS/LDS set: every subscribed resource, plus resources kept back for a later removal, with
   * rejected versions replaced by what the client kept. Shared between streams when plain.
   */
  private fullSetResponse(view: TypeView, retained: readonly HeldResource[]): OutgoingResponse & { sent: readonly HeldResource[] } {
    const sub = view.subscription!;
    let resources: readonly HeldResource[] = sub.resources();
    let suffix = '';
    if (view.rejected.size > 0) {
      resources = keepRejected(view.rejected, sub.resources());
      if (view.rejected.size > 0) suffix = '+kept';
    }
    if (retained.length > 0) {
      resources = [...resources, ...retained];
      suffix += '+retained';
    }
    if (suffix === '' && view.overrides.size === 0) {
      return sub.memoized('sotw:full', () => ({ ...this.sotwResponse(view, resources, ''), sent: resources }));
    }
    return { ...this.sotwResponse(view, resources, suffix), sent: resources };
  }

  private sotwResponse(view: TypeView, resources: readonly HeldResource[], versionSuffix: string): OutgoingResponse {
    const nonce = nextNonce();
    const version = view.subscription!.contentVersion() + versionSuffix;
    const bytes = encodeDiscoveryResponse({ versionInfo: version, typeUrl: view.typeUrl, nonce, resources });
    return { typeUrl: view.typeUrl, bytes, nonce, version, resources: resources.length, removed: 0, revisionTime: view.state.updatedAt };
  }

  private deltaResponse(view: TypeView, resources: readonly EncodedResource[], removed: readonly string[]): OutgoingResponse {
    const nonce = nextNonce();
    const version = view.state.version;
    const bytes = encodeDeltaResponse({ systemVersionInfo: version, typeUrl: view.typeUrl, nonce, resources, removed });
    return {
      typeUrl: view.typeUrl,
      bytes,
      nonce,
      version,
      resources: resources.length,
      removed: removed.length,
      revisionTime: view.state.updatedAt,
    };
  }

  private transmit(view: TypeView, response: OutgoingResponse, blameable: SentForBlame = {}): void {
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

  /** The client now holds the current revision, except resources kept back for a later removal. */
  private advance(view: TypeView, retained: readonly HeldResource[]): void {
    view.synced = view.state.revision;
    view.overrides.clear();
    for (const r of retained) view.overrides.set(r.name, r);
  }
}
