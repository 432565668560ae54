import { subjectKinds, type PayloadOf, type SubjectKindName } from '@switchyard/shared';

/**
 * How `syctl events` prints Watch API events: one readable line per event (time, kind,
 * scope, what happened), or one JSON object per line with `-o json`. Pure.
 */

export interface WatchedEvent {
  kind: string;
  stream: string;
  sequence: number;
  subject: string;
  tenant: string;
  service: string;
  revision: string;
  ts: number;
  /** The bus payload (see @switchyard/shared messages). */
  payload: unknown;
}

type Formatter<K extends SubjectKindName> = (p: PayloadOf<K>) => string;

const percentages = (traffic: { revision: string; percent: number }[]) => traffic.map((t) => `${t.revision} ${t.percent}%`).join(', ');

const formatters: { [K in SubjectKindName]?: Formatter<K> } = {
  health: (p) =>
    `${p.endpoint.address}:${p.endpoint.port}${p.endpoint.id ? ` (${p.endpoint.id})` : ''} ${p.previous} -> ${p.state}: ${p.reason}`,
  scale: (p) =>
    `${p.current} -> ${p.desired} instances${p.panic ? ' (panic)' : ''}${p.limitedBy ? `, limited by ${p.limitedBy}` : ''}: ${p.reason}`,
  instance: (p) => `${p.instance} ${p.event}${p.detail ? `: ${p.detail}` : ''}`,
  status: (p) =>
    p.event === 'deleted'
      ? `deleted (spec #${p.specRevision})`
      : `${p.event} spec #${p.specRevision}: revisions ${p.revisions.join(', ')}; traffic ${percentages(p.traffic)}`,
  deploy: (p) =>
    `${p.phase} ${p.revision}${p.previousRevision ? ` (from ${p.previousRevision})` : ''}: traffic ${percentages(p.traffic)}, ` +
    `${p.healthyInstances}/${p.desiredInstances} healthy${p.errorRatio === null ? '' : `, errors ${(p.errorRatio * 100).toFixed(1)}%`}` +
    `${p.message ? ` - ${p.message}` : ''}`,
  envoy: (p) => {
    const detail = p.detail as Record<string, unknown>;
    const what =
      p.type === 'outlier_detection'
        ? `${String(detail.action ?? '')} ${String(detail.type ?? '')}`.trim()
        : (Object.keys(detail).find((k) => k.endsWith('_event') || k.endsWith('_host')) ?? 'health check event');
    const endpoint = p.endpoint ? ` ${p.endpoint.address}:${p.endpoint.port}` : '';
    return `${p.type} ${what}${endpoint}${p.node ? ` (node ${p.node})` : ''}`;
  },
  xds: (p) =>
    `${p.event} node ${p.nodeId}${p.typeUrl ? ` ${p.typeUrl.split('.').at(-1)}` : ''}${p.version ? ` v${p.version}` : ''}${p.error ? `: ${p.error}` : ''}`,
};

/** One readable line: `<ISO time>  <kind>  <tenant/service[/revision]>  <what happened>`. */
export function formatEventLine(event: WatchedEvent): string {
  const scope = [event.tenant, event.service, event.revision].filter((part) => part !== '').join('/') || '-';
  return `${new Date(event.ts).toISOString()}  ${event.kind.padEnd(8)}  ${scope.padEnd(24)}  ${describe(event)}`;
}

/** One JSON object per line, for scripts (`-o json`). */
export function formatEventJson(event: WatchedEvent): string {
  return JSON.stringify(event);
}

function describe(event: WatchedEvent): string {
  const kind = event.kind as SubjectKindName;
  const schema = subjectKinds[kind]?.schema;
  const formatter = formatters[kind] as Formatter<SubjectKindName> | undefined;
  const parsed = schema?.safeParse(event.payload);
  if (formatter === undefined || parsed === undefined || !parsed.success) return JSON.stringify(event.payload);
  return formatter(parsed.data as PayloadOf<SubjectKindName>);
}
