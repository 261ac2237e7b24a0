import { type IdempotentExecutor, InvalidOptionError, type RunContext } from '../../index.js';
import {
  assertExecutor,
  assertId,
  assertOptionsObject,
  assertScopeOption,
  functionOption,
  integerOption,
  scopedKey,
} from '../edge/index.js';
import { downstreamKeyOf } from './downstream-key.js';
import { isTransientProviderError } from './transient.js';
import { wireParams } from './wire-params.js';

/** Options of {@link PaymentGuard}. */
export interface PaymentGuardOptions {
  /**
   * Prefix of the executor keys of this guard, so payments never share keys with other uses of
   * the same executor. A non-empty, well-formed string.
   * @defaultValue `'payment'`
   */
  readonly keyPrefix?: string;
  /**
   * Whether a provider error is transient: not cached, so a retry calls the provider again
   * (with the same downstream idempotency key). Other errors (declines) are cached and replayed.
   * @defaultValue {@link isTransientProviderError}
   */
  readonly isTransient?: (error: unknown) => boolean;
  /**
   * How long a duplicate waits for a charge in progress, ms (a positive integer).
   * @defaultValue the executor's `waitTimeoutMs`
   */
  readonly waitTimeoutMs?: number;
}

/** The defaults of {@link PaymentGuardOptions}. */
export const defaultPaymentGuardOptions = Object.freeze({
  keyPrefix: 'payment',
  isTransient: isTransientProviderError,
});

/** One guarded operation: what identifies it and what it asks the provider for. */
export interface PaymentOperation<Params> {
  /**
   * The order or operation key, e.g. the order id: one charge per key. A non-empty, well-formed
   * string (no lone surrogate), else `IDEMPOTENCY_INVALID_KEY`.
   */
  readonly key: string;
  /**
   * Whose key it is (merchant, account, tenant): the same key in two scopes is two charges.
   * Well-formed, else `IDEMPOTENCY_INVALID_KEY`; absent or `''` is one shared scope.
   */
  readonly scope?: string;
  /**
   * The request parameters. They are the fingerprint: the same key with other parameters fails
   * with `IDEMPOTENCY_KEY_REUSED` before the provider is called. Properties whose value is
   * `undefined` are left out of it, at any depth, as SDKs leave them off the wire.
   */
  readonly params: Params;
  /** Stops this caller's wait for a charge in progress (the charge itself goes on). */
  readonly signal?: AbortSignal;
}

/** What the provider call receives. */
export interface ProviderCallContext<Params> extends RunContext {
  /**
   * The downstream idempotency key: derived from scope and key, identical on every
   * re-execution (after a crash or a transient failure). Pass it to the provider.
   */
  readonly idempotencyKey: string;
  readonly params: Params;
}

/**
 * Guards payment-provider calls: one charge per (scope, key), whatever the retries, crashes and
 * concurrent duplicates; declines replayed; transient failures retried with the same downstream
 * idempotency key, so a provider that honours such keys dedupes as well.
 */
export class PaymentGuard {
  private readonly keyPrefix: string;
  private readonly isTransient: (error: unknown) => boolean;
  private readonly waitTimeoutMs: number | undefined;

  constructor(
    private readonly executor: IdempotentExecutor,
    options: PaymentGuardOptions = {},
  ) {
    assertExecutor(executor);
    assertOptionsObject(options);
    const keyPrefix = options.keyPrefix ?? defaultPaymentGuardOptions.keyPrefix;
    assertScopeOption('keyPrefix', keyPrefix);
    this.keyPrefix = keyPrefix;
    this.isTransient = functionOption(
      'isTransient',
      options.isTransient,
      defaultPaymentGuardOptions.isTransient,
    );
    // Absent: each run uses the executor's own (integerOption's fallback is never reached).
    this.waitTimeoutMs =
      options.waitTimeoutMs === undefined
        ? undefined
        : integerOption('waitTimeoutMs', options.waitTimeoutMs, 0);
  }

  /**
   * Runs `call` once for `operation` and returns its result; duplicates get the same result or
   * the same (cached) error. Never throws synchronously: bad input rejects, with
   * `IDEMPOTENCY_INVALID_KEY` for a key or scope, `IDEMPOTENCY_INVALID_OPTION` for the rest.
   */
  async run<Params, Result>(
    operation: PaymentOperation<Params>,
    call: (ctx: ProviderCallContext<Params>) => Result | PromiseLike<Result>,
  ): Promise<Result> {
    if (operation === null || typeof operation !== 'object') {
      throw new InvalidOptionError('operation', 'an object', operation);
    }
    if (typeof call !== 'function') throw new InvalidOptionError('call', 'a function', call);
    const { key, params, signal } = operation;
    assertId(key, 'the payment key');
    const scope = scopeOf(operation.scope);
    const idempotencyKey = downstreamKeyOf(scope, key);
    return this.executor.run(
      scopedKey(this.keyPrefix, [scope, key]),
      (ctx) =>
        call({
          key: ctx.key,
          idempotencyKey,
          params,
          // A getter: the executor makes the lease signal only when someone asks for it.
          get signal() {
            return ctx.signal;
          },
          fencingToken: () => ctx.fencingToken(),
        }),
      {
        fingerprint: wireParams(params),
        shouldCacheError: (error) => !this.isTransient(error),
        ...(signal === undefined ? {} : { signal }),
        ...(this.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: this.waitTimeoutMs }),
      },
    );
  }

  /**
   * The downstream idempotency key of (scope, key): `ie_` and 40 hex digits of SHA-256 — within
   * every common provider's limits (Adyen 64, PayPal 108, Stripe 255 characters). Distinct
   * (scope, key) pairs always get distinct keys; pairs without a NUL keep the key 0.1 gave them.
   * @throws InvalidKeyError for a key or scope that `run()` would refuse.
   */
  idempotencyKeyOf(key: string, scope = ''): string {
    assertId(key, 'the payment key');
    const checkedScope = scopeOf(scope);
    return downstreamKeyOf(checkedScope, key);
  }

  /**
   * The executor key of (scope, key), for `executor.inspect()` and `executor.forget()`:
   * `<keyPrefix>:<scope>:<key>`, each part with `%` and `:` escaped (see the shared edge's
   * `scopedKey`), the scope hashed when the whole would pass the executor's key limit.
   * @throws InvalidKeyError for a key or scope that `run()` would refuse.
   */
  executorKeyOf(key: string, scope = ''): string {
    assertId(key, 'the payment key');
    const checkedScope = scopeOf(scope);
    return scopedKey(this.keyPrefix, [checkedScope, key]);
  }
}

/** The scope of an operation: `''` when absent. @throws InvalidKeyError unless well-formed. */
function scopeOf(scope: unknown): string {
  if (scope === undefined || scope === '') return '';
  assertId(scope, 'the payment scope');
  return scope;
}
