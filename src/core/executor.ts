import { type Attributes, context, trace } from '@opentelemetry/api';
import { monotonicNow } from '../clock.js';
import type { RedisConnection } from '../store/redis/connection.js';
import { recordKeyOf } from '../store/redis/key-layout.js';
import { RedisStore } from '../store/redis/redis-store.js';
import { isStoreDataError, type Lease, type Store, type Subscription } from '../store/store.js';
import { type CallSettings, EMPTY_OPTIONS, resolveSettings } from './call-settings.js';
import {
  AbortedError,
  CorruptRecordError,
  ErrorCode,
  IdempotencyError,
  type IdempotencyErrorCode,
  InProgressError,
  InvalidKeyError,
  InvalidOptionError,
  isIdempotencyError,
  KeyReusedError,
  LeaseLostError,
  OutcomeNotStoredError,
  SerializationError,
  StoreUnavailableError,
  WaitTimeoutError,
} from './errors.js';
import { ExecutionContext, type RunContext } from './execution-context.js';
import { type Caller, Flight } from './flight.js';
import { isWellFormed, validateKey } from './keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import {
  defaultOptions,
  type ExecutorEvent,
  type ExecutorOptions,
  positiveInteger,
  type RunOptions,
} from './options.js';
import type { Outcome, Settled } from './outcome.js';
import { RecordCodec, RecordTooLargeError, type StoredRecord } from './record-codec.js';
import { leaseExpired, type RunOutcome, Telemetry } from './telemetry.js';
import { EXPIRY_MARGIN_MS, WaiterInbox } from './waiter-inbox.js';

export type { RunContext } from './execution-context.js';

/** What {@link IdempotentExecutor.inspect} reports about a key. */
export type Inspection =
  | { readonly state: 'absent' }
  | { readonly state: 'running'; readonly leaseExpiresInMs: number }
  | {
      readonly state: 'completed';
      /** true when the record holds a value, false when it holds a cached error. */
      readonly ok: boolean;
      readonly startedAt: Date;
      readonly completedAt: Date;
      /** Time left before the record expires, ms; -1 when it never does. */
      readonly expiresInMs: number;
    };

const LIBRARY_ERRORS = [
  AbortedError,
  CorruptRecordError,
  InProgressError,
  InvalidKeyError,
  InvalidOptionError,
  KeyReusedError,
  LeaseLostError,
  OutcomeNotStoredError,
  SerializationError,
  StoreUnavailableError,
  WaitTimeoutError,
];

/**
 * The library's own errors that describe a passing state (the store, a lease, a wait), not the
 * work: when fn throws one, it is never stored, whatever `shouldCacheError` says.
 */
const TRANSIENT_CODES: ReadonlySet<IdempotencyErrorCode> = new Set([
  ErrorCode.STORE_UNAVAILABLE,
  ErrorCode.LEASE_LOST,
  ErrorCode.WAIT_TIMEOUT,
  ErrorCode.IN_PROGRESS,
  ErrorCode.ABORTED,
]);

/**
 * Runs a function at most once per key across every process sharing a store, and hands every
 * duplicate caller (concurrent or later, in any process) the same value or the same error.
 *
 * @example
 * ```ts
 * const executor = new IdempotentExecutor({ redis: new Redis() });
 * const receipt = await executor.run(`charge:${orderId}`, () => charge(order), { fingerprint: order });
 * ```
 */
export class IdempotentExecutor {
  private readonly store: Store;
  private readonly ownsStore: boolean;
  private readonly codec: RecordCodec;
  private readonly namespace: string;
  private readonly defaults: CallSettings;
  private readonly onEvent: ((event: ExecutorEvent) => void) | undefined;
  private readonly replicas: number;
  private readonly replicasTimeoutMs: number;
  private readonly flights = new Map<string, Flight>();
  /** Executions of fn in this process not yet stored (close() waits for them). */
  private running = 0;
  /** Set while close() waits for {@link running} to reach 0. */
  private drained: (() => void) | undefined;
  private readonly keeper: LeaseKeeper;
  private readonly telemetry: Telemetry;
  private closed = false;

  constructor(options: ExecutorOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError('options', 'an object', options);
    }
    const { redis, store } = options;
    if ((redis === undefined) === (store === undefined)) {
      throw new InvalidOptionError(
        'redis` or `store',
        'given (exactly one of them)',
        redis ?? store,
      );
    }
    const namespace = options.namespace ?? defaultOptions.namespace;
    if (
      typeof namespace !== 'string' ||
      namespace.length === 0 ||
      namespace.length > 256 ||
      !isWellFormed(namespace)
    ) {
      throw new InvalidOptionError(
        'namespace',
        'a non-empty, well-formed string of at most 256 characters',
        namespace,
      );
    }
    this.namespace = namespace;
    this.telemetry = new Telemetry(namespace);
    this.defaults = resolveSettings(options, {
      ttlMs: defaultOptions.ttlMs,
      leaseMs: defaultOptions.leaseMs,
      waitTimeoutMs: defaultOptions.waitTimeoutMs,
      shouldCacheError: defaultOptions.shouldCacheError,
    });
    const maxRecordBytes = positiveInteger(
      'maxRecordBytes',
      options.maxRecordBytes ?? defaultOptions.maxRecordBytes,
      64,
    );
    const storeTimeoutMs = positiveInteger(
      'storeTimeoutMs',
      options.storeTimeoutMs ?? defaultOptions.storeTimeoutMs,
    );
    const errorClasses = options.errorClasses ?? defaultOptions.errorClasses;
    if (!Array.isArray(errorClasses) || errorClasses.some((cls) => !isErrorClass(cls))) {
      throw new InvalidOptionError('errorClasses', 'an array of Error subclasses', errorClasses);
    }
    this.codec = new RecordCodec([...LIBRARY_ERRORS, ...errorClasses], maxRecordBytes);
    this.keeper = new LeaseKeeper(this.codec);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
      throw new InvalidOptionError('onEvent', 'a function', options.onEvent);
    }
    this.onEvent = options.onEvent;
    if (store !== undefined) {
      if (typeof store.claim !== 'function')
        throw new InvalidOptionError('store', 'a Store', store);
      this.store = store;
      this.ownsStore = false;
    } else {
      if (redis === null || typeof redis !== 'object' || typeof redis.duplicate !== 'function') {
        throw new InvalidOptionError('redis', 'an ioredis Redis or Cluster client', redis);
      }
      // Checked above to be a client with duplicate(); typed structurally in the public API.
      this.store = new RedisStore({
        redis: redis as RedisConnection,
        commandTimeoutMs: storeTimeoutMs,
      });
      this.ownsStore = true;
    }
    this.replicas =
      options.replicas === undefined
        ? defaultOptions.replicas
        : positiveInteger('replicas', options.replicas, 0);
    this.replicasTimeoutMs = positiveInteger(
      'replicasTimeoutMs',
      options.replicasTimeoutMs ?? defaultOptions.replicasTimeoutMs,
    );
    if (this.replicas > 0 && this.store.waitForReplicas === undefined) {
      throw new InvalidOptionError('replicas', '0 for a store without replicas', this.replicas);
    }
    if (this.replicas > 0 && this.ownsStore && this.replicasTimeoutMs >= storeTimeoutMs) {
      // Every command, WAIT included, is cut off at storeTimeoutMs.
      throw new InvalidOptionError(
        'replicasTimeoutMs',
        `less than storeTimeoutMs (${storeTimeoutMs})`,
        this.replicasTimeoutMs,
      );
    }
  }

  /**
   * Runs `fn` once for `key` and returns its value, or the value (or error) of the execution
   * that already ran or is running for `key` anywhere.
   *
   * @throws fn's own error (as thrown for the executing caller, rebuilt for replays), or an
   * {@link IdempotencyError}: see `docs/errors.md`.
   */
  run<T>(
    key: string,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    options: RunOptions = EMPTY_OPTIONS,
  ): Promise<T> {
    // Not an async function: its promise would wrap the flight's, a second promise and three
    // more microtask turns on every call. Bad input still rejects, never throws.
    try {
      return this.start(key, fn, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private start<T>(
    key: string,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    options: RunOptions,
  ): Promise<T> {
    validateKey(key);
    if (typeof fn !== 'function') throw new InvalidOptionError('fn', 'a function', fn);
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError('options', 'an object', options);
    }
    const settings =
      options === EMPTY_OPTIONS ? this.defaults : resolveSettings(options, this.defaults);
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidOptionError('signal', 'an AbortSignal', signal);
    }
    if (options.wait !== undefined && typeof options.wait !== 'boolean') {
      throw new InvalidOptionError('wait', 'a boolean', options.wait);
    }
    const { attributes, resultAttributes } = options;
    if (
      attributes !== undefined &&
      (attributes === null || (typeof attributes !== 'object' && typeof attributes !== 'function'))
    ) {
      throw new InvalidOptionError('attributes', 'an object of span attributes', attributes);
    }
    if (resultAttributes !== undefined && typeof resultAttributes !== 'function') {
      throw new InvalidOptionError('resultAttributes', 'a function', resultAttributes);
    }
    if (this.closed) throw new StoreUnavailableError('The executor is closed', key);
    if (signal?.aborted) throw new AbortedError(key, signal.reason);
    const fingerprint =
      options.fingerprint === undefined ? null : this.codec.fingerprint(options.fingerprint, key);

    const span = this.telemetry.startRun(key, attributes, settings.leaseMs);
    const recordKey = recordKeyOf(this.namespace, key);
    let flight = this.flights.get(recordKey);
    const leader = flight === undefined;
    if (flight === undefined) {
      flight = new Flight(key, recordKey, fingerprint, this.endFlight);
      flight.span = span;
      this.flights.set(recordKey, flight);
    } else {
      this.telemetry.joined();
      if (this.onEvent !== undefined) this.emit({ type: 'joined', key });
    }
    const caller: Caller = {
      fingerprint,
      wait: options.wait ?? true,
      waitTimeoutMs: settings.waitTimeoutMs,
      signal,
      leader,
    };
    const result = flight.follow<T>(caller);
    if (leader) this.drive(flight, fn, settings);
    if (span === undefined) return result;
    const followed = flight;
    return this.telemetry.traceRun(
      span,
      result,
      leader ? () => followed.resolution : joinedOutcome,
      resultAttributes as ((value: T) => Attributes | undefined) | undefined,
    );
  }

  /** A flight ended: a later call with its key starts afresh. */
  private readonly endFlight = (flight: Flight): void => {
    if (this.flights.get(flight.recordKey) === flight) this.flights.delete(flight.recordKey);
  };

  /** What the store holds for `key` now. */
  async inspect(key: string): Promise<Inspection> {
    validateKey(key);
    const state = await this.storeCall(key, () =>
      this.store.read(recordKeyOf(this.namespace, key)),
    );
    if (state.state === 'absent') return { state: 'absent' };
    if (state.state === 'running') {
      if (state.ttlMs < 0) throw leaseWithoutExpiry(key);
      return { state: 'running', leaseExpiresInMs: state.ttlMs };
    }
    const record = this.decodeRecord(key, state.bytes);
    return {
      state: 'completed',
      ok: record.outcome.ok,
      startedAt: new Date(record.startedAt),
      completedAt: new Date(record.completedAt),
      expiresInMs: state.ttlMs,
    };
  }

  /**
   * Deletes the completed record of `key` (or whatever unreadable data sits there), so the next
   * call runs fn again. Returns false when there was nothing to delete.
   * @throws InProgressError when an execution of `key` is running (it is left alone).
   */
  async forget(key: string): Promise<boolean> {
    validateKey(key);
    const result = await this.storeCall(key, () =>
      this.store.forget(recordKeyOf(this.namespace, key)),
    );
    if (result === 'running') throw new InProgressError(key);
    return result === 'deleted';
  }

  /**
   * Stops taking calls, lets executions running in this process finish and store their
   * outcome, fails the callers still waiting on other processes with
   * `IDEMPOTENCY_STORE_UNAVAILABLE`, then closes the connections it opened.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new StoreUnavailableError('The executor was closed while this call waited');
    for (const flight of this.flights.values()) {
      if (flight.phase !== 'executing') flight.shutDown(closing);
    }
    if (this.running > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    if (this.ownsStore) await this.store.close();
  }

  /**
   * Drives one flight to its end. One claim answers a fresh run (the lease) and a replay (the
   * record, where the store reads it in the claim's round trip): both continue straight from
   * the claim's reply. Only an execution running elsewhere enters the wait loop
   * ({@link waitLoop}), which costs reads and a subscription.
   */
  private drive<T>(
    flight: Flight,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
  ): void {
    let claim: Promise<Lease | Uint8Array | null>;
    try {
      claim = this.store.claim(flight.recordKey, settings.leaseMs);
    } catch (error) {
      claim = Promise.reject(error);
    }
    claim.then(
      (claimed) => {
        try {
          if (claimed instanceof Uint8Array) {
            this.finish(flight, this.replay(flight, claimed, 0));
          } else if (claimed !== null) {
            this.begin(flight, claimed, fn, settings, 0, (settled) => this.finish(flight, settled));
          } else {
            this.waitLoop(flight, fn, settings).then(
              (settled) => this.finish(flight, settled),
              (error: unknown) => this.finish(flight, { kind: 'failure', error }),
            );
          }
        } catch (error) {
          this.finish(flight, { kind: 'failure', error });
        }
      },
      (error: unknown) =>
        this.finish(flight, { kind: 'failure', error: storeError(flight.key, error) }),
    );
  }

  /** Settles the flight: every caller attached to it gets `settled`. */
  private finish(flight: Flight, settled: Settled): void {
    if (
      settled.kind === 'failure' &&
      isIdempotencyError(settled.error) &&
      (settled.error.code === ErrorCode.STORE_UNAVAILABLE ||
        settled.error.code === ErrorCode.CORRUPT_RECORD)
    ) {
      this.telemetry.storeFailed(flight.span, settled.error.code);
    }
    flight.settle(settled);
  }

  /**
   * The flight holds `lease`: fn runs here, unless nobody waits for it any more (the lease is
   * given back). `waitStarted` is when the flight began waiting on another execution, 0 if never.
   */
  private begin<T>(
    flight: Flight,
    lease: Lease,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
    waitStarted: number,
    done: (settled: Settled) => void,
  ): void {
    if (flight.abandoned) {
      lease
        .release(this.codec.encodeReleaseNotice({ fingerprint: null, outcome: null }))
        .catch(noop)
        .then(() => done(ABANDONED));
      return;
    }
    if (waitStarted === 0) flight.resolution = 'executed';
    else {
      flight.resolution = 'taken_over';
      this.telemetry.tookOver(Date.now() - waitStarted);
    }
    flight.setPhase('executing');
    this.execute(flight, lease, fn, settings, done);
  }

  /**
   * The wait / take-over loop of a flight whose first claim found another execution running:
   * read the key, subscribe to its channel, wait for an outcome or the lease's expiry, claim
   * again.
   */
  private async waitLoop<T>(
    flight: Flight,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
  ): Promise<Settled> {
    const { key, recordKey } = flight;
    /** When this flight first found another execution running; 0 while it has not waited. */
    let waitStarted = 0;
    let subscription: Subscription | undefined;
    let inbox: WaiterInbox | undefined;
    try {
      // The claim that brought the flight here found the key held: read it first.
      for (let held = true; ; held = false) {
        if (flight.abandoned) return ABANDONED;
        if (!held) {
          let claimed: Lease | Uint8Array | null;
          try {
            claimed = await this.store.claim(recordKey, settings.leaseMs);
          } catch (error) {
            throw storeError(key, error);
          }
          if (claimed instanceof Uint8Array) return this.replay(flight, claimed, waitStarted);
          if (claimed !== null) {
            subscription?.unsubscribe();
            subscription = undefined;
            const lease = claimed;
            return await new Promise<Settled>((resolve) =>
              this.begin(flight, lease, fn, settings, waitStarted, resolve),
            );
          }
        }

        let state = await this.storeCall(key, () => this.store.read(recordKey));
        if (state.state === 'running' && subscription === undefined) {
          waitStarted = Date.now();
          flight.resolution = 'waited';
          this.telemetry.waitStarted(flight.span, state.ttlMs);
          flight.setPhase('waiting');
          if (flight.abandoned) return ABANDONED;
          const listener = new WaiterInbox();
          inbox = listener;
          subscription = await this.storeCall(key, () => this.store.subscribe(recordKey, listener));
          // Closes the race with a completion published between the read above and the subscribe.
          state = await this.storeCall(key, () => this.store.read(recordKey));
        }
        if (state.state === 'completed') return this.replay(flight, state.bytes, waitStarted);
        if (state.state === 'absent' || inbox === undefined) continue;
        if (state.ttlMs < 0) throw leaseWithoutExpiry(key);
        const event = await inbox.next(state.ttlMs + EXPIRY_MARGIN_MS, flight.abandonSignal);
        if (event === 'abandoned') return ABANDONED;
        if (event === 'expired' && flight.span !== undefined) leaseExpired(flight.span);
        if (event === 'expired' || event === 'resync') continue;
        const settled = this.settledFromMessage(key, event, waitStarted);
        if (settled !== undefined) return settled;
      }
    } finally {
      subscription?.unsubscribe();
    }
  }

  /**
   * Runs fn under the lease, renewed by the keeper, then stores (or releases) the outcome, and
   * hands the flight's end to `done`, once. Continuations rather than an async function: a fresh
   * run costs the promises of fn and of the store's commands, and no layer of its own.
   */
  private execute<T>(
    flight: Flight,
    lease: Lease,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
    done: (settled: Settled) => void,
  ): void {
    this.running++;
    let ended = false;
    const end = (settled: Settled): void => {
      if (ended) return;
      ended = true;
      this.running--;
      if (this.running === 0) this.drained?.();
      done(settled);
    };
    const { span } = flight;
    const ctx = new ExecutionContext(
      flight.key,
      lease,
      settings.leaseMs,
      settings.ttlMs + settings.leaseMs,
      storeError,
    );
    ctx.span = span;
    this.keeper.keep(ctx);
    const startedAt = Date.now();
    const after = (outcome: Outcome): void => {
      this.keeper.release(ctx);
      try {
        this.storeOutcome(flight, lease, settings, outcome, startedAt, end);
      } catch (error) {
        end({ kind: 'failure', error });
      }
    };
    try {
      // fn's own spans are children of the run's span.
      const value =
        span === undefined
          ? fn(ctx)
          : context.with(trace.setSpan(context.active(), span), fn, undefined, ctx);
      if (value !== null && (typeof value === 'object' || typeof value === 'function')) {
        // A promise, or any thenable, followed as `await` follows it (a `then` that throws rejects).
        Promise.resolve(value).then(
          (resolved) => after({ ok: true, value: resolved }),
          (error: unknown) => after({ ok: false, error }),
        );
      } else {
        after({ ok: true, value });
      }
    } catch (error) {
      after({ ok: false, error });
    }
  }

  /** fn has run: stores its outcome under the lease (or releases the key), then calls `end`. */
  private storeOutcome(
    flight: Flight,
    lease: Lease,
    settings: CallSettings,
    outcome: Outcome,
    startedAt: number,
    end: (settled: Settled) => void,
  ): void {
    const { key, fingerprint } = flight;
    const completedAt = Date.now();
    this.telemetry.executed(
      flight.resolution === 'taken_over' ? 'taken_over' : 'executed',
      outcome.ok,
      completedAt - startedAt,
    );

    if (!outcome.ok && !this.shouldCache(settings, outcome.error)) {
      void this.release(lease, fingerprint, outcome).then(() => {
        if (this.onEvent !== undefined) {
          this.emit({
            type: 'executed',
            key,
            ok: false,
            cached: false,
            durationMs: completedAt - startedAt,
          });
        }
        end({ kind: 'outcome', outcome, fingerprint });
      });
      return;
    }

    let record: Uint8Array;
    let outcomeStored = true;
    try {
      record = this.codec.encodeRecord({ outcome, fingerprint, startedAt, completedAt });
    } catch (error) {
      if (!(error instanceof RecordTooLargeError)) {
        const failure = error instanceof SerializationError ? withKey(error, key) : error;
        void this.release(lease, fingerprint, { ok: false, error: failure }).then(() =>
          end({ kind: 'failure', error: failure }),
        );
        return;
      }
      // fn ran: freeing the key would run it again for every duplicate. Keep that it ran, and
      // give duplicates a typed answer instead of the payload.
      outcomeStored = false;
      const marker = new OutcomeNotStoredError(key, error.bytes);
      // A few hundred bytes plus the key: kept even under a very small maxRecordBytes.
      record = this.codec.encodeRecord(
        { outcome: { ok: false, error: marker }, fingerprint, startedAt, completedAt },
        Number.POSITIVE_INFINITY,
      );
    }

    const stored = (result: StoreResult): void => {
      try {
        this.afterStore(
          flight,
          lease,
          outcome,
          result,
          outcomeStored,
          completedAt - startedAt,
          end,
        );
      } catch (error) {
        end({ kind: 'failure', error });
      }
    };
    let completion: Promise<boolean>;
    try {
      // The first attempt inline: it is the one that almost always answers.
      completion = lease.complete(record, settings.ttlMs);
    } catch (error) {
      completion = Promise.reject(error);
    }
    completion.then(
      (ok) => stored(ok ? 'stored' : 'lost'),
      (error: unknown) =>
        this.retryCompletion(key, lease, record, settings.ttlMs, error).then(
          stored,
          (failure: unknown) => end({ kind: 'failure', error: failure }),
        ),
    );
  }

  /** The completion answered `result`: what the flight's callers get. */
  private afterStore(
    flight: Flight,
    lease: Lease,
    outcome: Outcome,
    result: StoreResult,
    outcomeStored: boolean,
    durationMs: number,
    end: (settled: Settled) => void,
  ): void {
    const { key, span, fingerprint } = flight;
    if (result === 'unstored') {
      this.telemetry.storeFailed(span, 'outcome_unstored');
      if (lease.effectsCommitWithRecord === true) {
        // fn's writes commit with the record, and whether that commit happened is unknown: its
        // value would claim effects that may have been rolled back. A retry settles it: it
        // replays if the commit happened, and runs fn again if not.
        end({
          kind: 'failure',
          error: new StoreUnavailableError(
            `The commit of key "${key}" is in doubt (the store did not answer): retry to replay it if it happened, or to run fn again if not`,
            key,
          ),
        });
        return;
      }
    }
    if (result === 'lost') {
      this.telemetry.leaseLost(span);
      this.emit({ type: 'lease-lost', key });
      end({ kind: 'failure', error: new LeaseLostError(key) });
      return;
    }
    const settled: Settled = { kind: 'outcome', outcome, fingerprint };
    const announce = (): void => {
      if (this.onEvent !== undefined) {
        this.emit({
          type: 'executed',
          key,
          ok: outcome.ok,
          cached: result === 'stored' && outcomeStored,
          durationMs,
        });
      }
      end(settled);
    };
    if (result === 'stored' && this.replicas > 0) {
      this.awaitReplicas(key, flight).then(announce, announce);
    } else {
      announce();
    }
  }

  /**
   * Stores the record after a failed first attempt, retrying while the lease still holds. fn
   * has run: if the store stays unreachable, the caller still gets fn's outcome (the record is
   * not kept, and a later duplicate runs fn again once the lease expires). Throwing here
   * instead would make the caller retry, which is the very duplicate this library exists to
   * prevent.
   */
  private async retryCompletion(
    key: string,
    lease: Lease,
    record: Uint8Array,
    ttlMs: number,
    firstError: unknown,
  ): Promise<StoreResult> {
    let error = firstError;
    let delayMs = 25;
    for (;;) {
      if (monotonicNow() + delayMs >= lease.validUntil) {
        this.emit({ type: 'store-failed', key, error });
        return 'unstored';
      }
      await sleep(delayMs);
      delayMs = Math.min(delayMs * 2, 500);
      try {
        return (await lease.complete(record, ttlMs)) ? 'stored' : 'lost';
      } catch (next) {
        error = next;
      }
    }
  }

  /** Holds the caller until `replicas` replicas have the record, or the bound passes. */
  private async awaitReplicas(key: string, flight: Flight): Promise<void> {
    const acknowledged = await this.store
      .waitForReplicas?.(flight.recordKey, this.replicas, this.replicasTimeoutMs)
      .catch(() => 0);
    if (acknowledged !== undefined && acknowledged < this.replicas) {
      this.emit({ type: 'under-replicated', key, requested: this.replicas, acknowledged });
    }
  }

  /** Frees the key and hands an uncached error to the callers waiting in other processes. */
  private async release(
    lease: Lease,
    fingerprint: Uint8Array | null,
    outcome: Outcome,
  ): Promise<void> {
    let notice: Uint8Array;
    try {
      notice = this.codec.encodeReleaseNotice({ fingerprint, outcome });
    } catch {
      // Waiters that get no error to replay claim the key again instead.
      notice = this.codec.encodeReleaseNotice({ fingerprint, outcome: null });
    }
    // If the release fails, the lease simply expires and a waiter takes over.
    await lease.release(notice).catch(noop);
  }

  private settledFromMessage(
    key: string,
    bytes: Uint8Array,
    waitStarted: number,
  ): Settled | undefined {
    let decoded: ReturnType<RecordCodec['decode']>;
    try {
      decoded = this.codec.decode(bytes, key);
    } catch {
      return undefined; // an unreadable message: read the key again instead
    }
    if (decoded.kind === 'record') return this.replayed(key, decoded.record, waitStarted);
    const { notice } = decoded;
    if (notice.outcome === null) return undefined;
    this.telemetry.waitAnswered(Date.now() - waitStarted);
    return { kind: 'outcome', outcome: notice.outcome, fingerprint: notice.fingerprint };
  }

  private replay(flight: Flight, bytes: Uint8Array, waitStarted: number): Settled {
    if (waitStarted === 0) flight.resolution = 'replayed';
    return this.replayed(flight.key, this.decodeRecord(flight.key, bytes), waitStarted);
  }

  private replayed(key: string, record: StoredRecord, waitStarted: number): Settled {
    const waitedMs = waitStarted === 0 ? 0 : Date.now() - waitStarted;
    this.telemetry.replayed(waitedMs);
    this.emit({ type: 'replayed', key, waitedMs });
    return { kind: 'outcome', outcome: record.outcome, fingerprint: record.fingerprint };
  }

  private decodeRecord(key: string, bytes: Uint8Array): StoredRecord {
    const decoded = this.codec.decode(bytes, key);
    if (decoded.kind !== 'record') {
      throw new CorruptRecordError(`Key "${key}" holds a release notice, not a record`, key);
    }
    return decoded.record;
  }

  private shouldCache(settings: CallSettings, error: unknown): boolean {
    // fn failing on this library's own transient errors (ctx.fencingToken() while Redis is away,
    // a nested run that timed out) says nothing about fn's work: never kept for a day.
    if (isIdempotencyError(error) && TRANSIENT_CODES.has(error.code)) return false;
    try {
      return settings.shouldCacheError(error) !== false;
    } catch {
      // A predicate that throws cannot say the error is safe to retry: keep it.
      return true;
    }
  }

  /** Runs a store operation; any failure but unreadable data means the store is unreachable. */
  private storeCall<R>(key: string, operation: () => Promise<R>): Promise<R> {
    let pending: Promise<R>;
    try {
      pending = operation();
    } catch (error) {
      return Promise.reject(storeError(key, error));
    }
    return pending.catch((error: unknown) => {
      throw storeError(key, error);
    });
  }

  private emit(event: ExecutorEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch {
      // An observer must not change an outcome.
    }
  }
}

function isErrorClass(value: unknown): boolean {
  return typeof value === 'function' && (value === Error || value.prototype instanceof Error);
}

/** What a store failure means to the caller: unreadable data, or an unreachable store. */
function storeError(key: string, error: unknown): unknown {
  // Brands, not instanceof: a store built by the other copy of the package (ESM or CommonJS)
  // throws the other copy's classes.
  if (isIdempotencyError(error)) return error;
  if (isStoreDataError(error)) {
    return new CorruptRecordError(`Key "${key}" holds data this library did not write`, key, {
      cause: error,
    });
  }
  return new StoreUnavailableError(`The store did not answer for key "${key}"`, key, {
    cause: error,
  });
}

/** A lease token with no expiry: `run()` and `inspect()` give the same answer for it. */
function leaseWithoutExpiry(key: string): CorruptRecordError {
  return new CorruptRecordError(
    `Key "${key}" holds a lease with no expiry; it was not written by this library`,
    key,
  );
}

function withKey(error: SerializationError, key: string): SerializationError {
  if (error.key === key) return error;
  return new SerializationError(error.message, key, { cause: error.cause });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function noop(): void {}

function joinedOutcome(): RunOutcome {
  return 'joined';
}

const ABANDONED: Settled = { kind: 'abandoned' };

/** What became of a completion: stored, refused (the lease was lost), or not answered. */
type StoreResult = 'stored' | 'lost' | 'unstored';
