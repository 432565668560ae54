import { buckets, followBucket, type KvChange, type Logger, type NatsConnection, type StreamFollower } from '@switchyard/shared';
import type { Status } from '@nats-io/nats-core';
import type { Counter } from 'prom-client';
import type { ConfigView } from './config-view.js';

export interface ConfigWatcherOptions {
  nc: NatsConnection;
  view: ConfigView;
  logger: Logger;
  /** Counts entries the view could not use, by outcome ("invalid", "ignored"). */
  rejected: Counter<'outcome'>;
  /** Delay before watching again after the watch failed; doubles up to 10× this. */
  retryMs?: number;
}

/**
 * Feeds the config bucket into a {@link ConfigView} through the shared "load, then follow"
 * reader ({@link followBucket}): {@link ConfigWatcher.start} resolves only once the whole
 * bucket is in the view, so a restarted control plane serves nothing before it has everything;
 * after a reconnect, or when the watch ends, it follows again from the revision after the last
 * one applied. It also tracks the connection, so writes can be refused at once while it is down.
 */
export class ConfigWatcher {
  private disconnected = false;
  /** nats.js hands out a queued iterator: stopping it unregisters the listener. */
  private readonly statuses: AsyncIterable<Status> & { stop(): void };

  private constructor(
    private readonly options: ConfigWatcherOptions,
    private readonly follower: StreamFollower,
  ) {
    this.statuses = options.nc.status() as AsyncIterable<Status> & { stop(): void };
    void this.followConnection();
  }

  static async start(options: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const apply = (entry: KvChange) => ConfigWatcher.applyEntry(options, entry);
    const follower = await followBucket(options.nc, buckets.config, {}, { logger: options.logger, retryMs: options.retryMs }, apply);
    await follower.caughtUp;
    options.view.markLoaded();
    options.logger.info(
      { revision: options.view.revision, tenants: options.view.tenants().length, services: options.view.services().length },
      'config loaded',
    );
    return new ConfigWatcher(options, follower);
  }

  /** False between a NATS disconnect and the reconnect: writes would only time out. */
  get connected(): boolean {
    return !this.disconnected && !this.options.nc.isClosed();
  }

  async stop(): Promise<void> {
    this.statuses.stop();
    await this.follower.stop();
  }

  private static applyEntry(options: ConfigWatcherOptions, entry: KvChange): void {
    const result = options.view.apply(entry);
    if (result.outcome === 'invalid' || result.outcome === 'ignored') {
      options.rejected.inc({ outcome: result.outcome });
      options.logger.warn(
        { key: entry.key, revision: entry.revision, reason: result.reason },
        result.outcome === 'invalid' ? 'config record fails its schema; keeping the last good one' : 'config key ignored',
      );
    }
  }

  private async followConnection(): Promise<void> {
    for await (const status of this.statuses) {
      if (status.type === 'disconnect') this.disconnected = true;
      if (status.type === 'reconnect') this.disconnected = false;
    }
  }
}
