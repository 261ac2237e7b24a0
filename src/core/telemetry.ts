import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { VERSION } from '../version.js';
import { isIdempotencyError } from './errors.js';

/** The instrumentation scope of every span and instrument: the package. */
export const INSTRUMENTATION_NAME = 'idempotent-executor';

/** The name of the span of one `run()`. */
export const RUN_SPAN_NAME = 'idempotency.run';

/**
 * How a `run()` got its answer:
 * - `executed`: fn ran here;
 * - `taken_over`: fn ran here after this call had waited on another execution that ended without
 *   a stored outcome (its lease expired, or it released the key);
 * - `replayed`: a completed record was found at once;
 * - `waited`: this call waited on an execution in another process and got its outcome;
 * - `joined`: this call shared the flight of a concurrent call with the key in this process.
 */
export type RunOutcome = 'executed' | 'taken_over' | 'replayed' | 'waited' | 'joined';

/** Attribute names; `error.type` is the semantic-convention one. */
export const TelemetryAttribute = Object.freeze({
  NAMESPACE: 'idempotency.namespace',
  KEY: 'idempotency.key',
  OUTCOME: 'idempotency.outcome',
  RESULT: 'idempotency.result',
  ERROR_CODE: 'idempotency.error.code',
  ERROR_TYPE: 'error.type',
  LEASE_MS: 'idempotency.lease.duration_ms',
  LEASE_REMAINING_MS: 'idempotency.lease.remaining_ms',
  LEASE_LOST_BY: 'idempotency.lease.lost_by',
  RECORD_STORED: 'idempotency.record.stored',
});

/** Span event names. */
export const TelemetryEvent = Object.freeze({
  WAIT_STARTED: 'idempotency.wait.started',
  LEASE_EXPIRED: 'idempotency.lease.expired',
  LEASE_RENEWED: 'idempotency.lease.renewed',
  LEASE_LOST: 'idempotency.lease.lost',
  STORE_FAILED: 'idempotency.store.failed',
});

/** Instrument names. */
export const TelemetryMetric = Object.freeze({
  EXECUTIONS: 'idempotency.executions',
  REPLAYS: 'idempotency.replays',
  WAITS: 'idempotency.waits',
  JOINS: 'idempotency.joins',
  LEASE_LOSSES: 'idempotency.lease.losses',
  STORE_ERRORS: 'idempotency.store.errors',
  FN_DURATION: 'idempotency.fn.duration',
  WAIT_DURATION: 'idempotency.wait.duration',
});

const RUN_SPAN_OPTIONS: SpanOptions = Object.freeze({ kind: SpanKind.INTERNAL });

/** Seconds, as the semantic conventions' durations; buckets from 1 ms to 30 s. */
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

interface Instruments {
  readonly executions: Counter;
  readonly replays: Counter;
  readonly waits: Counter;
  readonly joins: Counter;
  readonly leaseLosses: Counter;
  readonly storeErrors: Counter;
  readonly fnDuration: Histogram;
  readonly waitDuration: Histogram;
}

/**
 * Traces and metrics of one executor, through `@opentelemetry/api` only: without a registered
 * SDK every call lands in the API's no-op implementations. The tracer is taken once (the API's
 * proxy tracer follows a provider registered later); a span's attributes are only built when it
 * records; metric attribute sets are made once per executor, so a run allocates none.
 */
export class Telemetry {
  private readonly tracer: Tracer;
  private meterProvider: MeterProvider | undefined;
  private instrumentsOf: Instruments | undefined;
  private readonly base: Attributes;
  private readonly executedAttributes: Record<
    'executed' | 'taken_over',
    Record<string, Attributes>
  >;
  private readonly replayedAttributes: Attributes;
  private readonly waitedAttributes: Attributes;
  private readonly takenOverAttributes: Attributes;
  private readonly storeErrorAttributes = new Map<string, Attributes>();

  constructor(private readonly namespace: string) {
    this.tracer = trace.getTracer(INSTRUMENTATION_NAME, VERSION);
    const ns = TelemetryAttribute.NAMESPACE;
    const outcome = TelemetryAttribute.OUTCOME;
    const result = TelemetryAttribute.RESULT;
    this.base = Object.freeze({ [ns]: namespace });
    const executed = (kind: 'executed' | 'taken_over') => ({
      ok: Object.freeze({ [ns]: namespace, [outcome]: kind, [result]: 'ok' }),
      error: Object.freeze({ [ns]: namespace, [outcome]: kind, [result]: 'error' }),
    });
    this.executedAttributes = {
      executed: executed('executed'),
      taken_over: executed('taken_over'),
    };
    this.replayedAttributes = Object.freeze({ [ns]: namespace, [outcome]: 'replayed' });
    this.waitedAttributes = Object.freeze({ [ns]: namespace, [outcome]: 'waited' });
    this.takenOverAttributes = Object.freeze({ [ns]: namespace, [outcome]: 'taken_over' });
  }

  /** Starts the span of a `run()`; undefined when it does not record (no SDK, not sampled). */
  startRun(
    key: string,
    extra: Attributes | (() => Attributes) | undefined,
    leaseMs: number,
  ): Span | undefined {
    const span = this.tracer.startSpan(RUN_SPAN_NAME, RUN_SPAN_OPTIONS);
    if (!span.isRecording()) return undefined;
    span.setAttribute(TelemetryAttribute.NAMESPACE, this.namespace);
    span.setAttribute(TelemetryAttribute.KEY, key);
    span.setAttribute(TelemetryAttribute.LEASE_MS, leaseMs);
    if (typeof extra === 'function') {
      try {
        span.setAttributes(extra());
      } catch {
        // An attribute callback must not change an outcome.
      }
    } else if (extra !== undefined) span.setAttributes(extra);
    return span;
  }

  /** Ends `span` with the outcome of its call once `result` settles; returns what to hand back. */
  traceRun<T>(
    span: Span,
    result: Promise<T>,
    outcomeOf: () => RunOutcome | undefined,
    resultAttributes: ((value: T) => Attributes | undefined) | undefined,
  ): Promise<T> {
    return result.then(
      (value) => {
        const outcome = outcomeOf();
        if (outcome !== undefined) span.setAttribute(TelemetryAttribute.OUTCOME, outcome);
        span.setAttribute(TelemetryAttribute.RESULT, 'ok');
        if (resultAttributes !== undefined) {
          try {
            const extra = resultAttributes(value);
            if (extra !== undefined) span.setAttributes(extra);
          } catch {
            // An attribute callback must not change an outcome.
          }
        }
        span.end();
        return value;
      },
      (error: unknown) => {
        const outcome = outcomeOf();
        if (outcome !== undefined) span.setAttribute(TelemetryAttribute.OUTCOME, outcome);
        span.setAttribute(TelemetryAttribute.RESULT, 'error');
        const type = errorType(error);
        span.setAttribute(TelemetryAttribute.ERROR_TYPE, type);
        if (isIdempotencyError(error)) span.setAttribute(TelemetryAttribute.ERROR_CODE, error.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
        span.end();
        throw error;
      },
    );
  }

  /** fn ran here and finished (its outcome may still fail to be stored). */
  executed(outcome: 'executed' | 'taken_over', ok: boolean, durationMs: number): void {
    const attributes = this.executedAttributes[outcome][ok ? 'ok' : 'error'];
    const instruments = this.instruments();
    instruments.executions.add(1, attributes);
    instruments.fnDuration.record(durationMs / 1000, attributes);
  }

  /** A completed record answered this flight, after `waitedMs` of waiting (0: at once). */
  replayed(waitedMs: number): void {
    const instruments = this.instruments();
    if (waitedMs === 0) {
      instruments.replays.add(1, this.replayedAttributes);
    } else {
      instruments.replays.add(1, this.waitedAttributes);
      instruments.waitDuration.record(waitedMs / 1000, this.waitedAttributes);
    }
  }

  /** A flight started waiting on an execution elsewhere. */
  waitStarted(span: Span | undefined, leaseRemainingMs: number): void {
    this.instruments().waits.add(1, this.base);
    span?.addEvent(TelemetryEvent.WAIT_STARTED, {
      [TelemetryAttribute.LEASE_REMAINING_MS]: leaseRemainingMs,
    });
  }

  /** A wait ended with an outcome that was not a record (an uncached error's release notice). */
  waitAnswered(waitedMs: number): void {
    this.instruments().waitDuration.record(waitedMs / 1000, this.waitedAttributes);
  }

  /** A waiting flight claimed the key itself. */
  tookOver(waitedMs: number): void {
    this.instruments().waitDuration.record(waitedMs / 1000, this.takenOverAttributes);
  }

  joined(): void {
    this.instruments().joins.add(1, this.base);
  }

  /** The completion was refused: another caller holds or held the key. */
  leaseLost(span: Span | undefined): void {
    this.instruments().leaseLosses.add(1, this.base);
    span?.addEvent(TelemetryEvent.LEASE_LOST, { [TelemetryAttribute.LEASE_LOST_BY]: 'completion' });
  }

  /** A flight failed on the store (unreachable, unreadable data), or an outcome went unstored. */
  storeFailed(span: Span | undefined, type: string): void {
    let attributes = this.storeErrorAttributes.get(type);
    if (attributes === undefined) {
      attributes = Object.freeze({
        [TelemetryAttribute.NAMESPACE]: this.namespace,
        [TelemetryAttribute.ERROR_TYPE]: type,
      });
      this.storeErrorAttributes.set(type, attributes);
    }
    this.instruments().storeErrors.add(1, attributes);
    span?.addEvent(TelemetryEvent.STORE_FAILED, { [TelemetryAttribute.ERROR_TYPE]: type });
  }

  /**
   * The instruments of the meter provider registered now. Taken again when the global provider
   * changes, so an SDK registered after the executor was made still gets its metrics.
   */
  private instruments(): Instruments {
    const provider = metrics.getMeterProvider();
    if (this.instrumentsOf === undefined || provider !== this.meterProvider) {
      this.meterProvider = provider;
      this.instrumentsOf = makeInstruments(provider.getMeter(INSTRUMENTATION_NAME, VERSION));
    }
    return this.instrumentsOf;
  }
}

/** Span events of a lease, from the keeper (renewal) and the execution (loss seen by renewal). */
export function leaseRenewed(span: Span): void {
  span.addEvent(TelemetryEvent.LEASE_RENEWED);
}

export function leaseLostByRenewal(span: Span): void {
  span.addEvent(TelemetryEvent.LEASE_LOST, { [TelemetryAttribute.LEASE_LOST_BY]: 'renewal' });
}

export function leaseExpired(span: Span): void {
  span.addEvent(TelemetryEvent.LEASE_EXPIRED);
}

function makeInstruments(meter: Meter): Instruments {
  const duration = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  return {
    executions: meter.createCounter(TelemetryMetric.EXECUTIONS, {
      description: 'Executions of fn in this process',
      unit: '{execution}',
    }),
    replays: meter.createCounter(TelemetryMetric.REPLAYS, {
      description: 'Calls answered from a stored record, at once or after waiting',
      unit: '{replay}',
    }),
    waits: meter.createCounter(TelemetryMetric.WAITS, {
      description: 'Waits begun on an execution running in another process',
      unit: '{wait}',
    }),
    joins: meter.createCounter(TelemetryMetric.JOINS, {
      description: 'Calls that joined a concurrent call with the same key in this process',
      unit: '{call}',
    }),
    leaseLosses: meter.createCounter(TelemetryMetric.LEASE_LOSSES, {
      description: 'Executions whose completion was refused because the lease was lost',
      unit: '{execution}',
    }),
    storeErrors: meter.createCounter(TelemetryMetric.STORE_ERRORS, {
      description: 'Runs failed by the store (unreachable, unreadable data) and unstored outcomes',
      unit: '{error}',
    }),
    fnDuration: duration(TelemetryMetric.FN_DURATION, 'Duration of fn'),
    waitDuration: duration(
      TelemetryMetric.WAIT_DURATION,
      'Time spent waiting on an execution in another process',
    ),
  };
}

/** `error.type`: the library's code, else the error's own string `code`, else its name. */
export function errorType(error: unknown): string {
  if (isIdempotencyError(error)) return error.code;
  if (error !== null && typeof error === 'object') {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && code.length > 0) return code;
    if (typeof name === 'string' && name.length > 0) return name;
  }
  return '_OTHER';
}

function errorMessage(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}
