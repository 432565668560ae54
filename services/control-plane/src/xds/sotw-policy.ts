import { encodeDiscoveryResponse, type HeldResource, type SotwRequest } from './encoding.js';
import { keepRejected } from './rejections.js';
import { nextNonce, type OutgoingResponse, type ResponsePolicy, type Transmission, type XdsStream } from './stream.js';
import { noRevisionSynced, type Subscription } from './type-state.js';
import { isFullSetType } from './types.js';
import { setSubscription, trackNewNames, type TypeView } from './view.js';

/**
 * State of the World: every request repeats the whole subscription and the version the client
 * holds; CDS and LDS responses carry every subscribed resource (an omission is a deletion),
 * EDS, RDS and SDS only what changed (they cannot express a removal at all).
 */
export const sotwPolicy: ResponsePolicy<SotwRequest> = {
  mode: 'sotw',

  handle(stream, req) {
    stream.identify(req.node);
    const view = stream.viewFor(req.typeUrl);
    if (view === undefined) return;
    if (req.nonce !== '' && req.nonce !== view.latestNonce) {
      // Stale: the client has not seen our latest response yet; its answer to that will follow.
      stream.hooks.staleNonce(view.typeUrl);
      return;
    }
    stream.settleInflight(view, req.nonce, req.errorDetail);
    updateSubscription(stream, view, req);
    stream.hooks.dirty();
  },

  resume(stream) {
    for (const view of stream.views.values()) {
      if (view.versionToCheck === undefined) continue;
      checkHeldVersion(view, view.versionToCheck);
      view.versionToCheck = undefined;
    }
  },

  expressesRemovals: isFullSetType,

  upserts(view, pending, deferRemovals): Transmission {
    if (isFullSetType(view.typeUrl)) {
      const full = fullSetResponse(view, deferRemovals ? pending.removals : []);
      return { response: full, blame: { sent: full.sent, pending } };
    }
    const build = () => sotwResponse(view, pending.upserts, '');
    return { response: view.overrides.size === 0 ? view.subscription!.memoized(`sotw:${view.synced}`, build) : build() };
  },

  // Full-set type: the set without the removed resources is the removal.
  removals: (view) => fullSetResponse(view, []),
};

/** A client reconnecting with the version it holds gets nothing it already has. */
function checkHeldVersion(view: TypeView, versionInfo: string): void {
  const holdsCurrent = versionInfo !== '' && versionInfo === view.subscription!.contentVersion();
  view.synced = holdsCurrent ? view.state.revision : noRevisionSynced;
  view.mustRespond = isFullSetType(view.typeUrl) && !holdsCurrent;
  // It ACKed this version on its previous stream; without that, a restart would show it pending for ever.
  if (holdsCurrent) {
    view.ackedVersion = versionInfo;
    view.status = 'ACKED';
  }
}

/** The subscription a request names; its names are decoded only when new to this type. */
function subscriptionOf(view: TypeView, req: SotwRequest): Subscription {
  const state = view.state;
  if (req.nameCount === 0) {
    // Legacy wildcard: an empty first CDS/LDS request means everything, until names were given.
    const legacyWildcard = isFullSetType(view.typeUrl) && !view.everNamed;
    return legacyWildcard ? state.wildcard : state.intern('raw:none', () => ({ names: [], wildcard: false }));
  }
  const next = state.internRaw(req.names, req.namesKey);
  if (!next.wildcard) view.everNamed = true;
  return next;
}

function updateSubscription(stream: XdsStream<SotwRequest>, view: TypeView, req: SotwRequest): void {
  const current = view.subscription;
  if (current?.raw !== undefined && (req.knownNames === current.raw || current.raw.equals(req.names))) return;
  const next = subscriptionOf(view, req);
  if (next === current) return;
  setSubscription(view, next);
  if (current === undefined) {
    if (stream.cache.ready) checkHeldVersion(view, req.versionInfo);
    else view.versionToCheck = req.versionInfo;
  } else if (isFullSetType(view.typeUrl)) {
    view.mustRespond = true;
  } else {
    trackNewNames(view, current, next);
  }
}

/**
 * A CDS/LDS set: every subscribed resource, plus resources kept back for a later removal, with
 * rejected versions replaced by what the client kept. Shared between streams when plain.
 */
function fullSetResponse(view: TypeView, retained: readonly HeldResource[]): OutgoingResponse & { sent: readonly HeldResource[] } {
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
    return sub.memoized('sotw:full', () => ({ ...sotwResponse(view, resources, ''), sent: resources }));
  }
  return { ...sotwResponse(view, resources, suffix), sent: resources };
}

function sotwResponse(view: TypeView, resources: readonly HeldResource[], versionSuffix: string): OutgoingResponse {
  const nonce = nextNonce();
  const version = view.subscription!.contentVersion() + versionSuffix;
  const bytes = encodeDiscoveryResponse({ versionInfo: version, typeUrl: view.typeUrl, nonce, resources });
  return { typeUrl: view.typeUrl, bytes, nonce, version, resources: resources.length, removed: 0, revisionTime: view.state.updatedAt };
}
