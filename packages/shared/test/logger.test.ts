import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger('test', 'info', sink), lines };
}

const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n';

describe('createLogger', () => {
  it.each([
    { label: 'a bare tls object', fields: { privateKey: key } },
    { label: 'a spec', fields: { tls: { privateKey: key } } },
    { label: 'a record', fields: { spec: { tls: { privateKey: key } } } },
    { label: 'a stored record', fields: { record: { spec: { tls: { privateKey: key } } } } },
    { label: 'a request body', fields: { req: { body: { spec: { tls: { privateKey: key } } } } } },
    { label: 'an admin token', fields: { SWITCHYARD_ADMIN_TOKEN: 'secret-token', headers: { authorization: 'Bearer secret-token' } } },
  ])('never writes secrets inside $label', ({ fields }) => {
    const { logger, lines } = capture();
    logger.info(fields, 'something happened');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('PRIVATE KEY');
    expect(lines[0]).not.toContain('secret-token');
    expect(lines[0]).toContain('[redacted]');
  });
});
