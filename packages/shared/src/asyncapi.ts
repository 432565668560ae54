import { z } from 'zod';
import { stringify } from 'yaml';
import { subjectKinds, subjectRoot, streams, type SubjectKindName } from './messages.js';

/** Which service publishes each kind, for the document's operations. */
const publishers: Record<SubjectKindName, string> = {
  load: 'stats-sink',
  loadpart: 'stats-sink',
  scale: 'autoscaler',
  endpoints: 'autoscaler',
  instance: 'autoscaler',
  health: 'event-streamer',
  envoy: 'event-streamer',
  status: 'control-plane',
  deploy: 'control-plane',
  xds: 'control-plane',
  activate: 'activator',
  hdsvotes: 'event-streamer',
};

const parameterDescriptions = {
  tenant: 'Tenant name (DNS label).',
  service: 'Service name (DNS label).',
  revision: 'Revision name (DNS label).',
  event: 'Event name.',
  replica: 'Event-streamer replica id.',
};

function streamOf(kind: string): string | undefined {
  return Object.values(streams).find((s) => s.subjects.some((subject) => subject === `${subjectRoot}.${kind}.>`))?.name;
}

/**
 * Builds the AsyncAPI 3 document for every subject from the zod schemas themselves, so the
 * documentation subscribers read cannot drift from what the services validate.
 */
export function asyncApiDocument(version: string): Record<string, unknown> {
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(subjectKinds) as [SubjectKindName, (typeof subjectKinds)[SubjectKindName]][]) {
    const params =
      def.tokens === 1
        ? [(def as { token?: string }).token ?? 'event']
        : def.tokens === 2
          ? ['tenant', 'service']
          : ['tenant', 'service', 'revision'];
    const address = [subjectRoot, def.kind, ...params.map((p) => `{${p}}`)].join('.');
    const messageName = `${name}Message`;
    const stream = def.jetstream ? streamOf(def.kind) : undefined;
    messages[messageName] = {
      name: messageName,
      contentType: 'application/json',
      summary: def.description,
      headers: {
        type: 'object',
        properties: {
          traceparent: { type: 'string', description: 'W3C trace context of the publisher' },
          tracestate: { type: 'string' },
        },
      },
      payload: z.toJSONSchema(def.schema, { io: 'output', unrepresentable: 'any' }),
    };
    channels[name] = {
      address,
      description: `${def.description} ${stream ? `Persisted in JetStream stream ${stream}.` : 'Core NATS (not persisted).'}`,
      parameters: Object.fromEntries(
        params.map((p) => [p, { description: parameterDescriptions[p as keyof typeof parameterDescriptions] }]),
      ),
      messages: { [messageName]: { $ref: `#/components/messages/${messageName}` } },
    };
    operations[`publish-${name}`] = {
      action: 'send',
      channel: { $ref: `#/channels/${name}` },
      summary: `Published by the ${publishers[name]}.`,
      messages: [{ $ref: `#/channels/${name}/messages/${messageName}` }],
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Switchyard bus',
      version,
      description:
        'Every NATS subject the Switchyard services publish. Subjects are switchyard.<kind>.<tenant>.<service>[.<revision>]; ' +
        'each payload carries schemaVersion. Generated from the zod schemas in packages/shared/src/messages.ts: do not edit by hand.',
    },
    defaultContentType: 'application/json',
    servers: { local: { host: '127.0.0.1:4222', protocol: 'nats' } },
    channels,
    operations,
    components: { messages },
  };
}

export function asyncApiYaml(version: string): string {
  return stringify(asyncApiDocument(version), { lineWidth: 0 });
}
