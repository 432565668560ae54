import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { TypeUrl, type LoadSample, type Logger, type ServiceRecord } from '@switchyard/shared';
import type { NackQuarantine } from './nack-quarantine.js';
import type { ConfigView } from '../store/index.js';
import type { XdsCache } from '../xds/index.js';
import {
  burstState,
  inFlight,
  serviceKey,
  translate,
  type BurstEntry,
  type TranslateOptions,
  type TranslationError,
} from '../translator/index.js';
import type { BusInputs } from './bus-inputs.js';

/**
 * Keeps the xDS cache equal to translate(desired state). Changes are coalesced: a change
 * schedules one translation on the next turn of the event loop, so a lone change goes out
 * at once and a burst (a KV replay, many endpoint sets) becomes one translation.
 */
export class TranslationLoop {
  private scheduled = false;
  private reapTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private errorsByService = new Map<string, TranslationError[]>();
  /** Each service's last record that translated: what Envoy keeps when a newer one fails. */
  private lastGood = new Map<string, ServiceRecord>();
  /** Revisions with a positive target burst capacity, as last translated, with their state kept current by load samples. */
  private burst = new Map<string, BurstEntry>();
  private readonly translations: Counter;
  private readonly duration: Histogram;
  private readonly rejected: Gauge;

  constructor(
    private readonly view: ConfigView,
    private readonly inputs: BusInputs,
    private readonly cache: XdsCache,
    private readonly options: TranslateOptions,
    /** Holds services whose latest spec Envoy rejected at their last accepted spec. */
    private readonly quarantine: NackQuarantine,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    this.translations = new Counter({
      name: 'switchyard_control_plane_translations_total',
      help: 'Translations of the desired state into Envoy resources.',
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'switchyard_control_plane_translation_seconds',
      help: 'Time to translate the whole desired state.',
      buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.rejected = new Gauge({
      name: 'switchyard_control_plane_translation_errors',
      help: 'Services or endpoints currently left out of the config because their input is invalid.',
      registers: [registry],
    });
  }

  /** Translates now (used once the initial state is loaded); later changes go through schedule(). */
  runNow(): void {
    if (this.stopped) return;
    const end = this.duration.startTimer();
    const now = Date.now();
    const services = this.quarantine.servedServices(this.view.services());
    const result = translate(
      {
        tenants: this.view.tenants().map((t) => t.record),
        services: services.map((s) => s.record),
        endpointSets: this.inputs.endpointSets,
        health: this.inputs.health,
        now,
        lastGood: this.lastGood,
        load: this.inputs.load,
        burst: new Map([...this.burst].map(([cluster, entry]) => [cluster, entry.state])),
      },
      this.options,
    );
    this.burst = result.burst;
    this.keepLastGood(result.accepted);
    this.cache.setSnapshot(result.snapshot);
    this.quarantine.translated(new Map(Object.values(TypeUrl).map((url) => [url, this.cache.typeState('envoy', url).version])), services);
    end();
    this.translations.inc();
    this.recordErrors(result.errors);
    clearTimeout(this.reapTimer);
    if (result.nextChangeAt !== undefined) {
      this.reapTimer = setTimeout(() => this.schedule(), Math.max(0, result.nextChangeAt - now));
      this.reapTimer.unref();
    }
  }

  schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      try {
        this.runNow();
      } catch (err) {
        // The cache kept its previous state; the next change retries.
        this.logger.error({ err }, 'translation failed; serving the previous config');
      }
    });
  }

  /**
   * A load sample arrived: translates again only when it moves its revision into or out of
   * the activator's path (burst capacity), else only keeps the revision's burst state current.
   */
  observeLoad(cluster: string, sample: LoadSample): void {
    const entry = this.burst.get(cluster);
    if (entry === undefined) return;
    const now = Date.now();
    const state = burstState(entry.state, { target: entry.target, capacity: entry.capacity, concurrency: inFlight(sample, now), now });
    this.burst.set(cluster, { ...entry, state });
    if (state.short !== entry.state.short) this.schedule();
  }

  /** Why parts of a service are left out of the config (empty when all of it is served). */
  errorsOf(tenant: string, service: string): TranslationError[] {
    return this.errorsByService.get(`${tenant}/${service}`) ?? [];
  }

  private keepLastGood(accepted: ServiceRecord[]): void {
    const next = new Map<string, ServiceRecord>();
    for (const { record } of this.view.services()) {
      const key = serviceKey(record);
      const kept = this.lastGood.get(key);
      if (kept !== undefined) next.set(key, kept);
    }
    for (const record of accepted) next.set(serviceKey(record), record);
    this.lastGood = next;
  }

  /** Logs each service's errors when they first appear (not on every translation) and sets the gauge. */
  private recordErrors(errors: TranslationError[]): void {
    const next = new Map<string, TranslationError[]>();
    for (const error of errors) {
      const key = `${error.tenant}/${error.service}`;
      next.set(key, [...(next.get(key) ?? []), error]);
      if (!this.errorsByService.has(key)) this.logger.warn({ ...error }, 'left out of the config');
    }
    this.errorsByService = next;
    this.rejected.set(errors.length);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reapTimer);
  }
}
