import type { RedisConnection } from '../store/redis/connection.js';
import { RedisStore } from '../store/redis/redis-store.js';
import {
  isStoreDataError,
  type KeyListener,
  type Lease,
  type Store,
  type Subscription,
} from '../store/store.js';
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
import { type Caller, Flight, type Settled } from './flight.js';
import { isWellFormed, recordKeyOf, validateKey } from './keys.js';
import {
  defaultOptions,
  type ExecutorEvent,
  type ExecutorOptions,
  MIN_LEASE_MS,
  optionalFunction,
  positiveInteger,
  type RunOptions,
} from './options.js';
import {
  type Outcome,
  RecordCodec,
  RecordTooLargeError,
  renewedLeaseMs,
  type StoredRecord,
} from './record-codec.js';

/** What fn receives. */
export interface RunContext {
  /** The idempotency key of this execution. */
  readonly key: string;
  /**
   * Aborted when the lease is lost (a renewal failed or another caller took the key over):
   * this execution's outcome will not be stored, so stop side effects that are not yet done.
   */
  readonly signal: AbortSignal;
  /**
   * A number larger than that of every earlier execution of this key that asked for one; hand it
   * to downstream writes so they can refuse a stale owner. Costs one round trip on first call,
   * nothing when never called. Rejects with `IDEMPOTENCY_LEASE_LOST` once the lease is lost.
   */
  fencingToken(): Promise<number>;
}

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

/** Per-call settings after defaults and validation. */
interface CallSettings {
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly waitTimeoutMs: number;
  readonly shouldCacheError: (error: unknown) => boolean;
}

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

/** A lease's expiry is pushed out again when this fraction of it is left. */
const RENEW_EVERY_FRACTION = 1 / 3;
/** A waiter retries its claim this long after the running lease's expiry, ms (Redis's precision). */
const EXPIRY_MARGIN_MS = 2;

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
  private readonly executing = new Set<Promise<unknown>>();
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
  async run<T>(
    key: string,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    options: RunOptions = EMPTY_OPTIONS,
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
    if (this.closed) throw new StoreUnavailableError('The executor is closed', key);
    if (signal?.aborted) throw new AbortedError(key, signal.reason);
    const fingerprint =
      options.fingerprint === undefined ? null : this.codec.fingerprint(options.fingerprint, key);

    const recordKey = recordKeyOf(this.namespace, key);
    let flight = this.flights.get(recordKey);
    const leader = flight === undefined;
    if (flight === undefined) {
      const started = new Flight(key, fingerprint, (ended) => {
        if (this.flights.get(recordKey) === ended) this.flights.delete(recordKey);
      });
      this.flights.set(recordKey, started);
      flight = started;
    } else {
      this.emit({ type: 'joined', key });
    }
    const caller: Caller = {
      fingerprint,
      wait: options.wait ?? true,
      waitTimeoutMs: settings.waitTimeoutMs,
      signal,
      leader,
    };
    const result = flight.follow<T>(caller);
    if (leader) {
      const started = flight;
      this.drive(started, recordKey, fn, settings).then(
        (settled) => started.settle(settled),
        (error: unknown) => started.settle({ kind: 'failure', error }),
      );
    }
    return result;
  }

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
    await Promise.allSettled([...this.executing]);
    if (this.ownsStore) await this.store.close();
  }

  /** The claim / replay / wait / take-over loop of one flight. */
  private async drive<T>(
    flight: Flight,
    recordKey: string,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
  ): Promise<Settled> {
    const { key } = flight;
    /** When this flight first found another execution running; 0 while it has not waited. */
    let waitStarted = 0;
    let subscription: Subscription | undefined;
    const inbox = new Inbox();
    try {
      for (;;) {
        if (flight.abandoned) return ABANDONED;
        const lease = await this.storeCall(key, () =>
          this.store.claim(recordKey, settings.leaseMs),
        );
        if (lease !== null) {
          if (flight.abandoned) {
            await lease
              .release(this.codec.encodeReleaseNotice({ fingerprint: null, outcome: null }))
              .catch(noop);
            return ABANDONED;
          }
          subscription?.unsubscribe();
          subscription = undefined;
          flight.setPhase('executing');
          const execution = this.execute(flight, lease, fn, settings);
          this.executing.add(execution);
          try {
            return await execution;
          } finally {
            this.executing.delete(execution);
          }
        }

        let state = await this.storeCall(key, () => this.store.read(recordKey));
        if (state.state === 'running' && subscription === undefined) {
          waitStarted = Date.now();
          flight.setPhase('waiting');
          if (flight.abandoned) return ABANDONED;
          subscription = await this.storeCall(key, () => this.store.subscribe(recordKey, inbox));
          // Closes the race with a completion published between the read above and the subscribe.
          state = await this.storeCall(key, () => this.store.read(recordKey));
        }
        if (state.state === 'completed') return this.replay(key, state.bytes, waitStarted);
        if (state.state === 'absent') continue;
        if (state.ttlMs < 0) throw leaseWithoutExpiry(key);
        const event = await inbox.next(state.ttlMs + EXPIRY_MARGIN_MS, flight.abandonSignal);
        if (event === 'abandoned') return ABANDONED;
        if (event === 'expired' || event === 'resync') continue;
        const settled = this.settledFromMessage(key, event, waitStarted);
        if (settled !== undefined) return settled;
      }
    } finally {
      subscription?.unsubscribe();
    }
  }

  /** Runs fn under the lease, renewing it, then stores (or releases) the outcome. */
  private async execute<T>(
    flight: Flight,
    lease: Lease,
    fn: (ctx: RunContext) => T | PromiseLike<T>,
    settings: CallSettings,
  ): Promise<Settled> {
    const { key, fingerprint } = flight;
    const ctx = new ExecutionContext(key, lease, settings.ttlMs + settings.leaseMs, (operation) =>
      this.storeCall(key, operation),
    );
    const keeper = new LeaseKeeper(lease, settings.leaseMs, this.codec, () => ctx.leaseLost());

    const startedAt = Date.now();
    let outcome: Outcome;
    try {
      outcome = { ok: true, value: await fn(ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      keeper.stop();
    }
    const completedAt = Date.now();

    if (!outcome.ok && !this.shouldCache(settings, outcome.error)) {
      await this.release(lease, fingerprint, outcome);
      this.emit({
        type: 'executed',
        key,
        ok: false,
        cached: false,
        durationMs: completedAt - startedAt,
      });
      return { kind: 'outcome', outcome, fingerprint };
    }

    let record: Uint8Array;
    let outcomeStored = true;
    try {
      record = this.codec.encodeRecord({ outcome, fingerprint, startedAt, completedAt });
    } catch (error) {
      if (error instanceof RecordTooLargeError) {
        // fn ran: freeing the key would run it again for every duplicate. Keep that it ran, and
        // give duplicates a typed answer instead of the payload.
        outcomeStored = false;
        const marker = new OutcomeNotStoredError(key, error.bytes);
        // A few hundred bytes plus the key: kept even under a very small maxRecordBytes.
        record = this.codec.encodeRecord(
          { outcome: { ok: false, error: marker }, fingerprint, startedAt, completedAt },
          Number.POSITIVE_INFINITY,
        );
      } else {
        const failure = error instanceof SerializationError ? withKey(error, key) : error;
        await this.release(lease, fingerprint, { ok: false, error: failure });
        return { kind: 'failure', error: failure };
      }
    }

    const stored = await this.completeRecord(key, lease, record, settings.ttlMs);
    if (stored === 'lost') {
      this.emit({ type: 'lease-lost', key });
      return { kind: 'failure', error: new LeaseLostError(key) };
    }
    if (stored === 'stored' && this.replicas > 0) await this.awaitReplicas(key, flight);
    const cached = stored === 'stored' && outcomeStored;
    this.emit({
      type: 'executed',
      key,
      ok: outcome.ok,
      cached,
      durationMs: completedAt - startedAt,
    });
    return { kind: 'outcome', outcome, fingerprint };
  }

  /**
   * Stores the record, retrying store failures while the lease still holds. fn has run: if the
   * store stays unreachable, the caller still gets fn's outcome (the record is not kept, and a
   * later duplicate runs fn again once the lease expires). Throwing here instead would make
   * the caller retry, which is the very duplicate this library exists to prevent.
   */
  private async completeRecord(
    key: string,
    lease: Lease,
    record: Uint8Array,
    ttlMs: number,
  ): Promise<'stored' | 'lost' | 'unstored'> {
    let delayMs = 25;
    for (;;) {
      try {
        return (await lease.complete(record, ttlMs)) ? 'stored' : 'lost';
      } catch (error) {
        if (Date.now() + delayMs >= lease.validUntil) {
          this.emit({ type: 'store-failed', key, error });
          return 'unstored';
        }
        await sleep(delayMs);
        delayMs = Math.min(delayMs * 2, 500);
      }
    }
  }

  /** Holds the caller until `replicas` replicas have the record, or the bound passes. */
  private async awaitReplicas(key: string, flight: Flight): Promise<void> {
    const recordKey = recordKeyOf(this.namespace, flight.key);
    const acknowledged = await this.store
      .waitForReplicas?.(recordKey, this.replicas, this.replicasTimeoutMs)
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
    return { kind: 'outcome', outcome: notice.outcome, fingerprint: notice.fingerprint };
  }

  private replay(key: string, bytes: Uint8Array, waitStarted: number): Settled {
    return this.replayed(key, this.decodeRecord(key, bytes), waitStarted);
  }

  private replayed(key: string, record: StoredRecord, waitStarted: number): Settled {
    this.emit({
      type: 'replayed',
      key,
      waitedMs: waitStarted === 0 ? 0 : Date.now() - waitStarted,
    });
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

/** The {@link RunContext} of one execution. Its AbortController is only made when asked for. */
class ExecutionContext implements RunContext {
  private controller: AbortController | undefined;
  private lost: LeaseLostError | undefined;
  private fencing: Promise<number> | undefined;

  constructor(
    readonly key: string,
    private readonly lease: Lease,
    private readonly fenceTtlMs: number,
    private readonly storeCall: <R>(operation: () => Promise<R>) => Promise<R>,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.lost !== undefined) this.controller.abort(this.lost);
    }
    return this.controller.signal;
  }

  leaseLost(): void {
    this.lost = new LeaseLostError(this.key);
    this.controller?.abort(this.lost);
  }

  fencingToken(): Promise<number> {
    this.fencing ??= this.storeCall(() => this.lease.fencingToken(this.fenceTtlMs)).then(
      (token) => {
        if (token === null) throw new LeaseLostError(this.key);
        return token;
      },
      (error: unknown) => {
        this.fencing = undefined;
        throw error;
      },
    );
    return this.fencing;
  }
}

/** Renews a lease every third of its length until stopped; calls `onLost` once if it is lost. */
class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Made at the first renewal: most executions finish before one is due. */
  private notice: Uint8Array | undefined;

  constructor(
    private readonly lease: Lease,
    private readonly leaseMs: number,
    private readonly codec: RecordCodec,
    private readonly onLost: () => void,
  ) {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    this.timer = setTimeout(
      () => void this.renew(),
      Math.max(1, Math.floor(this.leaseMs * RENEW_EVERY_FRACTION)),
    );
  }

  private async renew(): Promise<void> {
    let held: boolean;
    try {
      this.notice ??= this.codec.encodeRenewalNotice(this.leaseMs);
      held = await this.lease.extend(this.leaseMs, this.notice);
    } catch {
      // Unreachable store: keep trying while the lease surely holds, then give it up.
      held = Date.now() < this.lease.validUntil;
    }
    if (this.stopped) return;
    if (held) this.schedule();
    else {
      this.stopped = true;
      this.onLost();
    }
  }
}

/**
 * Messages for one waiting flight. An outcome can arrive while the flight is busy claiming or
 * reading, so the latest is kept until asked for. Renewal notices only push the expiry timer
 * out while the flight waits (a read after a claim learns the expiry anyway), so a waiter
 * sends no command for as long as the owner keeps renewing.
 */
class Inbox implements KeyListener {
  private pending: Uint8Array | 'resync' | undefined;
  private wake: (() => void) | undefined;
  private rearm: ((timeoutMs: number) => void) | undefined;

  onMessage(bytes: Uint8Array): void {
    const leaseMs = renewedLeaseMs(bytes);
    if (leaseMs !== undefined) {
      this.rearm?.(leaseMs + EXPIRY_MARGIN_MS);
      return;
    }
    this.pending = bytes;
    this.wake?.();
  }

  onResync(): void {
    this.pending ??= 'resync';
    this.wake?.();
  }

  /** The next message, `'expired'` after `timeoutMs`, or `'abandoned'` when `signal` aborts. */
  next(
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<Uint8Array | 'resync' | 'expired' | 'abandoned'> {
    const take = () => {
      const message = this.pending;
      this.pending = undefined;
      return message;
    };
    const ready = take();
    if (ready !== undefined) return Promise.resolve(ready);
    if (signal.aborted) return Promise.resolve('abandoned');
    return new Promise((resolve) => {
      let timer = setTimeout(() => finish('expired'), timeoutMs);
      const finish = (result: Uint8Array | 'resync' | 'expired' | 'abandoned') => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.wake = undefined;
        this.rearm = undefined;
        resolve(result);
      };
      const onAbort = () => finish('abandoned');
      signal.addEventListener('abort', onAbort, { once: true });
      this.wake = () => {
        const message = take();
        if (message !== undefined) finish(message);
      };
      this.rearm = (nextTimeoutMs) => {
        clearTimeout(timer);
        timer = setTimeout(() => finish('expired'), nextTimeoutMs);
      };
    });
  }
}

function resolveSettings(options: RunOptions | ExecutorOptions, base: CallSettings): CallSettings {
  return {
    ttlMs: options.ttlMs === undefined ? base.ttlMs : positiveInteger('ttlMs', options.ttlMs),
    leaseMs:
      options.leaseMs === undefined
        ? base.leaseMs
        : positiveInteger('leaseMs', options.leaseMs, MIN_LEASE_MS),
    waitTimeoutMs:
      options.waitTimeoutMs === undefined
        ? base.waitTimeoutMs
        : positiveInteger('waitTimeoutMs', options.waitTimeoutMs),
    shouldCacheError: optionalFunction(
      'shouldCacheError',
      options.shouldCacheError,
      base.shouldCacheError,
    ),
  };
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

const ABANDONED: Settled = { kind: 'abandoned' };
const EMPTY_OPTIONS: RunOptions = Object.freeze({});
