import type { XdsTypeUrl } from '@switchyard/shared';
import type { HeldResource } from './encoding.js';
import type { RejectedResource, SentForBlame } from './rejections.js';
import { noRevisionSynced, type Subscription, type SyncedView, type TypeState } from './type-state.js';
import type { ErrorDetail } from './types.js';

/**
 * What one stream knows about one type: the synced view (which revision the client holds,
 * what it subscribes to) plus the protocol state (nonces, ACKs, NACKs). Both protocol
 * policies and the stream change it only through the functions here.
 */

/** CSDS words for where a type stands with one client. */
export type DeliveryStatus = 'REQUESTED' | 'ACKED' | 'NACKED';

export interface NackRecord {
  version: string;
  nonce: string;
  errorDetail: ErrorDetail;
  at: number;
}

export interface Inflight extends SentForBlame {
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

export function newView(typeUrl: XdsTypeUrl, state: TypeState): TypeView {
  return {
    typeUrl,
    state,
    subscription: undefined,
    synced: noRevisionSynced,
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
}

/** Moves a view to another (interned) subscription, keeping reference counts right. */
export function setSubscription(view: TypeView, next: Subscription): void {
  next.refs++;
  if (view.subscription !== undefined) view.state.release(view.subscription);
  view.subscription = next;
}

/** Names newly subscribed are held by the client at no version, whatever the synced revision says. */
export function trackNewNames(view: TypeView, before: Subscription, after: Subscription): void {
  if (view.synced === noRevisionSynced) return;
  if (after.wildcard && !before.wildcard) {
    view.synced = noRevisionSynced;
    view.overrides.clear();
    return;
  }
  for (const name of after.names) if (!before.includes(name) && !view.overrides.has(name)) view.overrides.set(name, null);
  for (const name of before.names) if (!after.includes(name)) view.overrides.delete(name);
}

/** The client now holds the current revision, except resources kept back for a later removal. */
export function advance(view: TypeView, retained: readonly HeldResource[]): void {
  view.synced = view.state.revision;
  view.overrides.clear();
  for (const r of retained) view.overrides.set(r.name, r);
}
