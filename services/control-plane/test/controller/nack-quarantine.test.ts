import { describe, expect, it } from 'vitest';
import { serviceSpec, type ServiceRecord } from '@switchyard/shared';
import { NackQuarantine, type StoredService } from '../../src/controller/nack-quarantine.js';

const rds = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';

function stored(tenant: string, name: string, revision: number, regex?: string): StoredService {
  const spec = serviceSpec.parse({
    domains: [`${name}.${tenant}.test`],
    revisions: [{ name: 'v1', endpoints: [{ address: '127.0.0.1', port: 8000 }] }],
    ...(regex === undefined ? {} : { routes: [{ match: { regex } }] }),
  });
  const record: ServiceRecord = { schemaVersion: 1, tenant, name, spec, updatedAt: revision };
  return { record, revision };
}

const versions = (v: string) => new Map([[rds, v]]);
const names = (services: StoredService[]) => services.map((s) => `${s.record.tenant}/${s.record.name}@${s.revision}`);

describe('NackQuarantine', () => {
  const good = [stored('acme', 'web', 1), stored('globex', 'api', 2)];
  const changed = [stored('acme', 'web', 3, '^/(a|b)$'), stored('globex', 'api', 4)];

  it.each([
    {
      label: 'the error names one changed service: only it is held, at its accepted spec',
      error: "regex '^/(a|b)$' RE2 program size of 18 > max program size of 5",
      held: ['acme/web'],
      served: ['acme/web@1', 'globex/api@4'],
    },
    {
      label: 'the error names none: every service changed since the ACK is held',
      error: 'Error adding/updating listener(s)',
      held: ['acme/web', 'globex/api'],
      served: ['acme/web@1', 'globex/api@2'],
    },
  ])('$label', ({ error, held, served }) => {
    const q = new NackQuarantine();
    q.translated(versions('v1'), good);
    q.acked(rds, 'v1');
    q.translated(versions('v2'), changed);
    const blamed = q.nacked(rds, 'v2', error, 1000);
    expect(blamed.map((h) => `${h.tenant}/${h.service}`)).toEqual(held);
    expect(names(q.servedServices(changed))).toEqual(served);
  });

  it('lifts a hold when the spec changes again, and forgets deleted services', () => {
    const q = new NackQuarantine();
    q.translated(versions('v1'), good);
    q.acked(rds, 'v1');
    q.translated(versions('v2'), changed);
    q.nacked(rds, 'v2', "regex '^/(a|b)$'", 1000);
    expect(q.holdOf('acme', 'web')).toMatchObject({ rejectedRevision: 3, servedRevision: 1, since: 1000 });
    const fixed = [stored('acme', 'web', 5), changed[1]!];
    expect(names(q.servedServices(fixed))).toEqual(['acme/web@5', 'globex/api@4']);
    expect(q.holdOf('acme', 'web')).toBeUndefined();
  });

  it('leaves out a new service whose first spec is rejected', () => {
    const q = new NackQuarantine();
    q.translated(versions('v1'), [good[1]!]);
    q.acked(rds, 'v1');
    q.translated(versions('v2'), [changed[0]!, good[1]!]);
    q.nacked(rds, 'v2', "regex '^/(a|b)$'", 1000);
    expect(names(q.servedServices([changed[0]!, good[1]!]))).toEqual(['globex/api@2']);
    expect(q.holdOf('acme', 'web')?.servedRevision).toBeUndefined();
  });

  it('blames nothing for an unknown version, or when nothing was ever accepted and the error names no service', () => {
    const q = new NackQuarantine();
    q.translated(versions('v1'), changed);
    expect(q.nacked(rds, 'v9', "regex '^/(a|b)$'", 1)).toEqual([]);
    expect(q.nacked(rds, 'v1', 'something else', 1)).toEqual([]);
  });
});
