import { decodeNames, encodeDeltaResponse, type DeltaRequest, type EncodedResource } from './encoding.js';
import { nextNonce, type OutgoingResponse, type ResponsePolicy, type XdsStream } from './stream.js';
import { nameSetKey, type Subscription } from './type-state.js';
import { isFullSetType } from './types.js';
import { setSubscription, trackNewNames, type TypeView } from './view.js';

/**
 * Delta (incremental) xDS: requests carry only subscription changes and the versions a
 * reconnecting client holds; responses carry what changed and the names removed, for every
 * type alike.
 */
export const deltaPolicy: ResponsePolicy<DeltaRequest> = {
  mode: 'delta',

  handle(stream, req) {
    stream.identify(req.node);
    if (!stream.cache.ready) {
      stream.waiting.push(req);
      return;
    }
    const view = stream.viewFor(req.typeUrl);
    if (view === undefined) return;
    if (req.nonce !== '' && req.nonce !== view.latestNonce) stream.hooks.staleNonce(view.typeUrl);
    else stream.settleInflight(view, req.nonce, req.errorDetail);
    // Subscription changes count even with a stale nonce: the client has already switched.
    updateSubscription(view, req);
    stream.hooks.dirty();
  },

  resume(stream: XdsStream<DeltaRequest>) {
    for (const req of stream.waiting.splice(0)) this.handle(stream, req);
  },

  expressesRemovals: () => true,

  upserts(view, pending, deferRemovals) {
    const removed = deferRemovals ? [] : pending.removals.map((r) => r.name);
    const build = () => deltaResponse(view, pending.upserts, removed);
    return { response: shareable(view, `delta:${view.synced}:${deferRemovals}`, build) };
  },

  removals(view, pending) {
    const build = () =>
      deltaResponse(
        view,
        [],
        pending.removals.map((r) => r.name),
      );
    return shareable(view, `delta-removals:${view.synced}`, build);
  },
};

/** A response every stream at the same revision gets alike is built once, unless this one has exceptions. */
function shareable(view: TypeView, key: string, build: () => OutgoingResponse): OutgoingResponse {
  return view.overrides.size === 0 ? view.subscription!.memoized(key, build) : build();
}

function updateSubscription(view: TypeView, req: DeltaRequest): void {
  const current = view.subscription;
  const first = current === undefined;
  // A plain ACK changes nothing; skip copying and re-keying a large name set.
  if (!first && req.subscribeCount === 0 && req.unsubscribe.length === 0) return;
  if (first) {
    for (const [name, version] of Object.entries(req.initialVersions)) view.overrides.set(name, { name, version });
    view.resumed = view.overrides.size > 0;
  }
  const next =
    first && req.subscribeCount > 0 && req.unsubscribe.length === 0 ? firstSubscription(view, req) : changedSubscription(view, req);
  if (next === current) return;
  setSubscription(view, next);
  if (current !== undefined) trackNewNames(view, current, next);
  else view.mustRespond = next.wildcard;
}

/**
 * A stream's first subscribe list is the whole subscription, as a State-of-the-World request's
 * names are: interned by its raw bytes, which a fleet of alike Envoys sends byte for byte.
 */
function firstSubscription(view: TypeView, req: DeltaRequest): Subscription {
  return view.state.internRaw(req.subscribeNames, req.subscribeKey);
}

function changedSubscription(view: TypeView, req: DeltaRequest): Subscription {
  const current = view.subscription;
  const first = current === undefined;
  let wildcard = current?.wildcard ?? (req.subscribeCount === 0 && isFullSetType(view.typeUrl));
  const names = new Set(current?.names ?? []);
  for (const name of decodeNames(req.subscribeNames)) {
    if (name === '*') wildcard = true;
    else names.add(name);
  }
  for (const name of req.unsubscribe) {
    if (name === '*') wildcard = false;
    else names.delete(name);
    // The client forgets what it unsubscribed from; a later subscribe must send it again.
    if (name !== '*' && !first) view.overrides.delete(name);
  }
  return view.state.intern(`${wildcard ? '*' : ''}${nameSetKey(names)}`, () => ({ names, wildcard }));
}

function deltaResponse(view: TypeView, resources: readonly EncodedResource[], removed: readonly string[]): OutgoingResponse {
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
