import {
  buckets,
  followBucket,
  parseConfigKey,
  serviceRecord,
  type Logger,
  type NatsConnection,
  type StreamFollower,
} from '@switchyard/shared';
import { serviceEntry, type Directory } from './directory.js';

/**
 * Keeps the directory to the services of the config bucket: every service record first
 * (`caughtUp`), then every change. A record that fails its schema is logged and skipped; the
 * service keeps its last valid entry.
 */
export function followServices(nc: NatsConnection, directory: Directory, logger: Logger): Promise<StreamFollower> {
  return followBucket(nc, buckets.config, { key: 'services.>' }, { logger }, (change) => {
    const parsed = parseConfigKey(change.key);
    if (parsed?.kind !== 'service') return;
    if (change.operation !== 'PUT') {
      directory.delete(parsed.tenant, parsed.service);
      return;
    }
    const record = serviceRecord.safeParse(parseJson(change.value));
    if (!record.success || record.data.tenant !== parsed.tenant || record.data.name !== parsed.service) {
      logger.warn({ key: change.key, revision: change.revision }, 'ignored a service record that fails its schema');
      return;
    }
    directory.put(serviceEntry(record.data));
  });
}

function parseJson(value: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(value));
  } catch {
    return undefined;
  }
}
