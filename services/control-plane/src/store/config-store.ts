import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import {
  buckets,
  configKeys,
  openBucket,
  type KV,
  type Logger,
  type DeploymentRecord,
  type NatsConnection,
  type ServiceRecord,
  type TenantRecord,
  type TokenRecord,
} from '@switchyard/shared';
import type { Registry } from 'prom-client';
import { ConfigView } from './config-view.js';
import { ConfigWatcher } from './config-watcher.js';
import { registryCounter } from './metrics.js';
import {
  defaultRetryPolicy,
  isTransientStoreError,
  nextRetry,
  resolveConflict,
  StoreUnavailable,
  type Intent,
  type RetryPolicy,
  type StoredEntry,
} from './write-retry.js';

/**
 * Optimistic concurrency on one key: `ifRevision` updates only the revision the writer read
 * (its ETag); `ifAbsent` creates only a key that does not exist (or was deleted).
 */
export type WriteCondition = { ifRevision: number } | { ifAbsent: true };

/** The key is not at the revision the writer expected (or exists when it expected none). */
export class RevisionConflict extends Error {
  constructor(
    readonly key: string,
    readonly condition: WriteCondition | { ifRevision: number | undefined },
  ) {
    super('ifAbsent' in condition ? `${key} already exists` : `${key} is not at revision ${condition.ifRevision}`);
    this.name = 'RevisionConflict';
  }
}

/** A record larger than the NATS server takes in one message (its `max_payload`, less room for headers). */
export class RecordTooLarge extends Error {
  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${key} would be ${bytes} bytes stored; the NATS server takes at most ${limit}`);
    this.name = 'RecordTooLarge';
  }
}

/** Room a KV put needs for its headers besides the record (expected-sequence and message headers). */
const headerAllowance = 4096;

export interface ConfigStoreOptions {
  nc: NatsConnection;
  logger: Logger;
  registry: Registry;
  /** How long a write waits for the watcher to bring it into the view. */
  viewTimeoutMs?: number;
  /** JetStream replicas of the bucket (NATS_STREAM_REPLICAS). */
  replicas?: number;
  /** How long a write is retried while JetStream cannot take it (a leader election, a reconnect). */
  retry?: RetryPolicy;
}

/**
 * The desired state in JetStream KV (`buckets.config`), the source of truth: writes go to the
 * bucket with compare-and-set, reads come from the {@link ConfigView} the watcher keeps. A
 * write returns once the view holds it, so this process reads its own writes.
 */
export class ConfigStore {
  private constructor(
    readonly nc: NatsConnection,
    readonly kv: KV,
    readonly view: ConfigView,
    private readonly watcher: ConfigWatcher,
    private readonly logger: Logger,
    private readonly viewTimeoutMs: number,
    private readonly retry: RetryPolicy,
  ) {}

  /** Opens (or creates) the bucket and resolves once the whole bucket is loaded into the view. */
  static async open(options: ConfigStoreOptions): Promise<ConfigStore> {
    const { nc, logger } = options;
    const kv = await openBucket(nc, buckets.config, { replicas: options.replicas ?? 1 });
    const view = new ConfigView((err) => logger.error({ err }, 'config change listener failed'));
    const watcher = await ConfigWatcher.start({
      nc,
      view,
      logger,
      rejected: registryCounter(
        options.registry,
        'switchyard_control_plane_config_rejected_total',
        'Config bucket entries the control plane could not use (invalid: fails its schema, ignored: unknown key).',
        ['outcome'],
      ),
    });
    return new ConfigStore(nc, kv, view, watcher, logger, options.viewTimeoutMs ?? 5000, options.retry ?? defaultRetryPolicy);
  }

  putTenant(record: TenantRecord, condition: WriteCondition): Promise<number> {
    return this.write(configKeys.tenant(record.name), record, condition);
  }

  putService(record: ServiceRecord, condition: WriteCondition): Promise<number> {
    return this.write(configKeys.service(record.tenant, record.name), record, condition);
  }

  /** Stores a token under the SHA-256 of its secret; the hash never exists twice. */
  putToken(sha256Hex: string, record: TokenRecord): Promise<number> {
    return this.write(configKeys.token(sha256Hex), record, { ifAbsent: true });
  }

  /** The service's current (or last) deployment; the deployment controller advances it with `ifRevision`. */
  putDeployment(record: DeploymentRecord, condition: WriteCondition): Promise<number> {
    return this.write(configKeys.deployment(record.tenant, record.service), record, condition);
  }

  deleteDeployment(tenant: string, service: string, ifRevision?: number): Promise<void> {
    return this.delete(configKeys.deployment(tenant, service), ifRevision);
  }

  deleteService(tenant: string, service: string, ifRevision?: number): Promise<void> {
    return this.delete(configKeys.service(tenant, service), ifRevision);
  }

  deleteTenant(tenant: string, ifRevision?: number): Promise<void> {
    return this.delete(configKeys.tenant(tenant), ifRevision);
  }

  /**
   * Deletes a tenant and everything under it: every service and deployment key (valid or not:
   * read from the bucket, not the view), its tokens, then the tenant at `ifRevision`.
   */
  async deleteTenantTree(tenant: string, ifRevision: number): Promise<void> {
    this.checkConnected();
    const keys: string[] = [];
    // One filter per call: nats-server 2.9 takes no filter lists.
    for (const filter of [configKeys.servicesOf(tenant), configKeys.deploymentsOf(tenant)]) {
      for await (const key of await this.kv.keys(filter)) keys.push(key);
    }
    for (const key of keys) await this.delete(key);
    for (const token of this.view.tokens().filter((t) => t.record.tenant === tenant)) await this.deleteToken(token.hash);
    await this.deleteTenant(tenant, ifRevision);
  }

  deleteToken(sha256Hex: string): Promise<void> {
    return this.delete(configKeys.token(sha256Hex));
  }

  /** Stops watching; the NATS connection belongs to the caller. */
  async close(): Promise<void> {
    await this.watcher.stop();
  }

  /** Writes fail at once while NATS is disconnected, instead of waiting for a request timeout. */
  private checkConnected(): void {
    if (!this.watcher.connected) throw new StoreUnavailable();
  }

  private async write(key: string, record: unknown, condition: WriteCondition): Promise<number> {
    const data = JSON.stringify(record);
    const limit = (this.nc.info?.max_payload ?? Number.POSITIVE_INFINITY) - headerAllowance;
    const bytes = Buffer.byteLength(data);
    if (bytes > limit) throw new RecordTooLarge(key, bytes, limit);
    const revision = await this.compareAndSet(key, { put: data, create: 'ifAbsent' in condition }, condition, () =>
      'ifAbsent' in condition ? this.kv.create(key, data) : this.kv.update(key, data, condition.ifRevision),
    );
    await this.untilViewHas(revision);
    return revision;
  }

  private async delete(key: string, ifRevision?: number): Promise<void> {
    await this.compareAndSet(key, { delete: true }, { ifRevision }, async () => {
      await this.kv.delete(key, ifRevision === undefined ? undefined : { previousSeq: ifRevision });
      return 0;
    });
    // A delete does not report its revision; the bucket's last one is at least as new.
    await this.catchUp();
  }

  /** Waits until the view holds every change the bucket has now (after losing a compare-and-set race, say). */
  async catchUp(): Promise<void> {
    const status = await this.withRetry(() => this.kv.status());
    await this.untilViewHas(status.streamInfo.state.last_seq);
  }

  /**
   * One compare-and-set, retried while JetStream cannot take it; a conflict met on a retry is
   * checked against what the bucket holds, so this write's own earlier attempt is not a conflict.
   */
  private compareAndSet(
    key: string,
    intent: Intent,
    condition: WriteCondition | { ifRevision: number | undefined },
    attempt: () => Promise<number>,
  ): Promise<number> {
    return this.withRetry(async (attemptNumber) => {
      this.checkConnected();
      try {
        return await attempt();
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        const verdict = resolveConflict(intent, attemptNumber > 1, await this.stored(key));
        if (verdict === 'conflict') throw new RevisionConflict(key, condition);
        // The key was freed meanwhile: a transient state, so the create is retried with the rest.
        if (verdict === 'tryAgain') throw new StoreUnavailable(1, `${key} was freed while being created`);
        this.logger.info({ key }, 'config write found its own earlier attempt in the bucket');
        return verdict.ownWrite;
      }
    });
  }

  /** Runs `operation` until it succeeds, fails for good, or the retry budget is spent (then 503). */
  private async withRetry<T>(operation: (attemptNumber: number) => Promise<T>): Promise<T> {
    const startedAt = Date.now();
    for (let attemptNumber = 1; ; attemptNumber++) {
      try {
        return await operation(attemptNumber);
      } catch (err) {
        if (!isTransientStoreError(err)) throw err;
        const step = nextRetry(this.retry, attemptNumber, startedAt, Date.now());
        if ('giveUp' in step)
          throw new StoreUnavailable(
            step.giveUp.retryAfterSeconds,
            `the config store (NATS JetStream) did not take the write: ${(err as Error).message}`,
          );
        this.logger.debug({ err, attemptNumber }, 'config write retried');
        await new Promise((resolve) => setTimeout(resolve, step.retryInMs));
      }
    }
  }

  private async stored(key: string): Promise<StoredEntry> {
    const entry = await this.kv.get(key);
    if (entry === null) return undefined;
    return entry.operation === 'PUT'
      ? { deleted: false, value: entry.string(), revision: entry.revision }
      : { deleted: true, revision: entry.revision };
  }

  /**
   * A write answers success only once reads see it. If the view's watch is still recovering (a
   * NATS node was lost), the write is stored but the answer is 503: the client's retry of the
   * same write then finds it and succeeds, and nobody is told "created" and then "not found".
   */
  private async untilViewHas(revision: number): Promise<void> {
    try {
      await this.view.waitFor(revision, this.viewTimeoutMs);
    } catch (err) {
      this.logger.warn({ err, revision }, 'config write stored but not yet visible in the view');
      throw new StoreUnavailable(1, 'the write is stored, but this API replica cannot read it back yet; retry');
    }
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}
