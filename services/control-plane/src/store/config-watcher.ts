import type { KV, Logger, NatsConnection } from '@switchyard/shared';
import type { Counter } from 'prom-client';
import type { ConfigView } from './config-view.js';

export interface ConfigWatcherOptions {
  kv: KV;
  nc: NatsConnection;
  view: ConfigView;
  logger: Logger;
  /** Counts entries the view could not use, by outcome ("invalid", "ignored"). */
  rejected: Counter<'outcome'>;
  /** Delay before watching again after the watch failed; doubles up to 10× this. */
  retryMs?: number;
}

/**
 * Feeds the config bucket into a {@link ConfigView}: the last value of every key first, then
 * every change. {@link ConfigWatcher.start} resolves only once the whole bucket (as it was
 * when the watch began) is in the view, so a restarted control plane serves nothing before it
 * has everything. After a NATS reconnect, or when the watch ends, it watches again from the
 * revision after the last one applied: nothing is missed and nothing is applied twice.
 */
export class ConfigWatcher {
  private current: { stop(): void } | undefined;
  private stopped = false;
  private disconnected = false;
  private readonly done: Promise<void>;

  private constructor(
    private readonly options: ConfigWatcherOptions,
    target: number,
    loaded: () => void,
  ) {
    this.done = this.run(target, loaded);
    void this.followReconnects();
  }

  static async start(options: ConfigWatcherOptions): Promise<ConfigWatcher> {
    const status = await options.kv.status();
    const target = status.streamInfo.state.last_seq;
    let markLoaded!: () => void;
    const loaded = new Promise<void>((resolve) => (markLoaded = resolve));
    const watcher = new ConfigWatcher(options, target, markLoaded);
    await loaded;
    options.logger.info(
      {
        revision: options.view.revision,
        tenants: options.view.tenants().length,
        services: options.view.services().length,
      },
      'config loaded',
    );
    return watcher;
  }

  /** False between a NATS disconnect and the reconnect: writes would only time out. */
  get connected(): boolean {
    return !this.disconnected && !this.options.nc.isClosed();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.stop();
    await this.done;
  }

  private async run(target: number, loaded: () => void): Promise<void> {
    const { kv, view, logger } = this.options;
    const retryMs = this.options.retryMs ?? 500;
    let failures = 0;
    const checkLoaded = () => {
      if (view.initialLoad && view.revision >= target) {
        view.markLoaded();
        loaded();
      }
    };
    checkLoaded();
    while (!this.stopped) {
      try {
        const resume = view.revision > 0 ? { resumeFromRevision: view.revision + 1 } : {};
        const iterator = await kv.watch({ key: '>', ...resume });
        this.current = iterator;
        if (this.stopped) iterator.stop();
        failures = 0;
        for await (const entry of iterator) {
          this.applyEntry(entry);
          checkLoaded();
        }
      } catch (err) {
        failures += 1;
        logger.warn({ err, revision: view.revision }, 'config watch failed; watching again');
      }
      if (!this.stopped && failures > 0) await delay(Math.min(retryMs * 2 ** (failures - 1), retryMs * 10));
    }
  }

  private applyEntry(entry: { key: string; operation: 'PUT' | 'DEL' | 'PURGE'; revision: number; value: Uint8Array }): void {
    const result = this.options.view.apply(entry);
    if (result.outcome === 'invalid' || result.outcome === 'ignored') {
      this.options.rejected.inc({ outcome: result.outcome });
      this.options.logger.warn(
        { key: entry.key, revision: entry.revision, reason: result.reason },
        result.outcome === 'invalid' ? 'config record fails its schema; keeping the last good one' : 'config key ignored',
      );
    }
  }

  /**
   * Tracks the connection. The ordered consumer behind a watch only notices a lost server after
   * missed heartbeats; a reconnect is a faster cue to watch again.
   */
  private async followReconnects(): Promise<void> {
    for await (const status of this.options.nc.status()) {
      if (this.stopped) break;
      if (status.type === 'disconnect') this.disconnected = true;
      if (status.type === 'reconnect') {
        this.disconnected = false;
        this.current?.stop();
      }
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
