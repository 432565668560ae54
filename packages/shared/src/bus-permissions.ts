import { randomBytes } from 'node:crypto';
import { bucketAccess, buckets, busServices, streams, streamsOwner, subjectKinds, subjectRoot, type SubjectKindName } from './messages.js';
import { kvStream } from './kv-follower.js';

/**
 * The NATS permission table: what each identity may publish and subscribe to, derived from the
 * bus contract in messages.ts (each subject kind's `publishers` and `readers`, `bucketAccess`,
 * `streamsOwner`). A new subject or bucket is registered there; this module turns it into
 * subjects, the nats-server `authorization` block and the table in docs/bus.md.
 */

/** Every NATS identity: one per service, and `tools` for read-only subscribers (syctl, dashboards, scripts). */
export const busIdentities = [...busServices, 'tools'] as const;
export type BusIdentity = (typeof busIdentities)[number];

export interface SubjectPermissions {
  publish: string[];
  subscribe: string[];
  /** Subjects refused even if an allow pattern covers them. */
  denyPublish: string[];
}

/**
 * Where a service's request replies arrive. Each service has a prefix of its own, so no identity
 * can subscribe to another's replies (JetStream API answers, KV reads, consumer deliveries).
 */
export function inboxPrefixOf(identity: BusIdentity): string {
  return identity === 'tools' ? '_INBOX' : `_INBOX_${identity}`;
}

const api = '$JS.API';

/** What an ordered consumer (the stream follower, KV watches) and direct reads of a stream need. */
function readStream(stream: string, mayDeleteConsumers: boolean): string[] {
  return [
    `${api}.STREAM.INFO.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}`,
    `${api}.CONSUMER.CREATE.${stream}.>`,
    `${api}.CONSUMER.INFO.${stream}.*`,
    `${api}.CONSUMER.MSG.NEXT.${stream}.*`,
    ...(mayDeleteConsumers ? [`${api}.CONSUMER.DELETE.${stream}.*`] : []),
    `${api}.DIRECT.GET.${stream}`,
    `${api}.DIRECT.GET.${stream}.>`,
    `${api}.STREAM.MSG.GET.${stream}`,
  ];
}

function manageStream(stream: string): string[] {
  return [`${api}.STREAM.CREATE.${stream}`, `${api}.STREAM.UPDATE.${stream}`];
}

const kindNames = Object.keys(subjectKinds) as SubjectKindName[];
const bucketNames = Object.keys(buckets) as (keyof typeof buckets)[];

/** Everything published on a kind: `switchyard.<kind>.>`. */
export function kindSubjects(name: SubjectKindName): string {
  return `${subjectRoot}.${subjectKinds[name].kind}.>`;
}

/** The stream that stores a JetStream kind. */
export function streamOf(name: SubjectKindName): string | undefined {
  if (!subjectKinds[name].jetstream) return undefined;
  return Object.values(streams).find((s) => (s.subjects as readonly string[]).includes(kindSubjects(name)))?.name;
}

/** What one identity may do, in terms of the contract (the rows of the docs table). */
export interface Access {
  publishes: SubjectKindName[];
  reads: SubjectKindName[];
  /** JetStream streams it reads with consumers and direct gets. */
  readsStreams: string[];
  writesBuckets: string[];
  readsBuckets: string[];
  managesStreams: string[];
}

export function accessOf(identity: BusIdentity): Access {
  if (identity === 'tools') {
    return {
      publishes: [],
      reads: kindNames,
      readsStreams: Object.values(streams).map((s) => s.name),
      writesBuckets: [],
      readsBuckets: [],
      managesStreams: [],
    };
  }
  const reads = kindNames.filter((k) => subjectKinds[k].readers.includes(identity));
  const writesBuckets = bucketNames.filter((b) => bucketAccess[b].writers.includes(identity)).map((b) => buckets[b]);
  return {
    publishes: kindNames.filter((k) => subjectKinds[k].publishers.includes(identity)),
    reads,
    readsStreams: unique(reads.map(streamOf).filter((s): s is string => s !== undefined)),
    writesBuckets,
    readsBuckets: bucketNames.filter((b) => bucketAccess[b].readers.includes(identity)).map((b) => buckets[b]),
    managesStreams: identity === streamsOwner ? Object.values(streams).map((s) => s.name) : [],
  };
}

/** The subjects an identity may publish and subscribe to. Everything else the server refuses. */
export function permissionsOf(identity: BusIdentity): SubjectPermissions {
  const access = accessOf(identity);
  const service = identity !== 'tools';
  const bucketStreams = [...access.writesBuckets, ...access.readsBuckets].map(kvStream);
  return {
    publish: unique([
      // jetstreamManager() asks the account's JetStream limits first; every service checks the streams exist as wanted.
      `${api}.INFO`,
      ...(service ? Object.values(streams).map((s) => `${api}.STREAM.INFO.${s.name}`) : []),
      ...access.publishes.map(kindSubjects),
      ...access.writesBuckets.map((b) => `$KV.${b}.>`),
      ...[...access.readsStreams, ...bucketStreams].flatMap((s) => readStream(s, service)),
      ...[...access.managesStreams, ...access.writesBuckets.map(kvStream)].flatMap(manageStream),
    ]),
    // Tools read every subject kind, so they may subscribe to all of them at once.
    subscribe: [`${inboxPrefixOf(identity)}.>`, ...(service ? access.reads.map(kindSubjects) : [`${subjectRoot}.>`])],
    denyPublish: service ? [] : [`${subjectRoot}.>`, '$KV.>'],
  };
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}

/** The environment variable the generated server config takes an identity's password from. */
export function passwordVariable(identity: BusIdentity): string {
  return `NATS_PASSWORD_${identity.toUpperCase().replace(/-/g, '_')}`;
}

/**
 * A nats-server `authorization` block with one user per identity (user name = identity) and
 * its permissions. `password` gives each user's password as config text: a quoted literal
 * (the all-in-one's generated file) or `$VARIABLE`, which nats-server reads from its
 * environment (compose).
 */
export function natsServerAuthorization(password: (identity: BusIdentity) => string): string {
  const list = (items: string[]) => `[\n${items.map((s) => `          ${JSON.stringify(s)}`).join('\n')}\n        ]`;
  const users = busIdentities.map((identity) => {
    const p = permissionsOf(identity);
    const deny = p.denyPublish.length > 0 ? `, deny: ${list(p.denyPublish)}` : '';
    return [
      `    {`,
      `      user: ${JSON.stringify(identity)}`,
      `      password: ${password(identity)}`,
      `      permissions: {`,
      `        publish: { allow: ${list(p.publish)}${deny} }`,
      `        subscribe: { allow: ${list(p.subscribe)} }`,
      `      }`,
      `    }`,
    ].join('\n');
  });
  return [
    '# Generated from packages/shared/src/bus-permissions.ts (the permission table); do not edit.',
    'authorization {',
    '  users: [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

/** Passwords from the server's environment: `$NATS_PASSWORD_<IDENTITY>`. */
export const passwordsFromEnv = (identity: BusIdentity) => `$${passwordVariable(identity)}`;

export type BusPasswords = Record<BusIdentity, string>;

/** A fresh random password per identity. */
export function newBusPasswords(): BusPasswords {
  return Object.fromEntries(busIdentities.map((identity) => [identity, randomBytes(24).toString('base64url')])) as BusPasswords;
}

/** The passwords set in `env` as the generated server config reads them (`NATS_PASSWORD_<IDENTITY>`). */
export function busPasswordsFromEnv(env: Record<string, string | undefined>): Partial<BusPasswords> {
  const entries = busIdentities.map((identity) => [identity, env[passwordVariable(identity)]] as const);
  return Object.fromEntries(entries.filter(([, password]) => password !== undefined && password !== ''));
}

/** Literal passwords (for a config file only Switchyard's user may read). */
export const literalPasswords = (passwords: BusPasswords) => (identity: BusIdentity) => JSON.stringify(passwords[identity]);

/** The markdown table of docs/bus.md: who may publish and subscribe what. */
export function permissionTable(): string {
  const code = (items: string[]) => (items.length === 0 ? '—' : items.map((s) => `\`${s}\``).join(', '));
  const rows = busIdentities.map((identity) => {
    const a = accessOf(identity);
    const jetstream = [
      ...a.managesStreams.map((s) => `creates ${s}`),
      ...a.readsStreams.map((s) => `reads ${s}`),
      ...a.writesBuckets.map((b) => `writes KV ${b}`),
      ...a.readsBuckets.map((b) => `reads KV ${b}`),
    ];
    const publishes = identity === 'tools' ? 'nothing (denied: `switchyard.>`, `$KV.>`)' : code(a.publishes.map(kindSubjects));
    const subscribes = identity === 'tools' ? `\`${subjectRoot}.>\` (every kind)` : code(a.reads.map(kindSubjects));
    return `| ${identity} | ${publishes} | ${subscribes} | ${jetstream.length === 0 ? '—' : jetstream.join('; ')} | \`${inboxPrefixOf(identity)}.>\` |`;
  });
  return ['| identity | may publish | may subscribe | JetStream API | replies on |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
