import { createHash } from 'node:crypto';
import {
  type IdempotentExecutor,
  InvalidKeyError,
  InvalidOptionError,
  type RunContext,
} from '../../index.js';
import { isTransientProviderError } from './transient.js';

/** Options of {@link PaymentGuard}. */
export interface PaymentGuardOptions {
  /**
   * Prefix of the executor keys of this guard, so payments never share keys with other uses of
   * the same executor.
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
   * How long a duplicate waits for a charge in progress, ms.
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
  /** The order or operation key, e.g. the order id: one charge per key. */
  readonly key: string;
  /** Whose key it is (merchant, account, tenant): the same key in two scopes is two charges. */
  readonly scope?: string;
  /**
   * The request parameters. They are the fingerprint: the same key with other parameters fails
   * with `IDEMPOTENCY_KEY_REUSED` before the provider is called.
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
    const keyPrefix = options.keyPrefix ?? defaultPaymentGuardOptions.keyPrefix;
    if (typeof keyPrefix !== 'string' || keyPrefix.length === 0) {
      throw new InvalidOptionError('keyPrefix', 'a non-empty string', keyPrefix);
    }
    const isTransient = options.isTransient ?? defaultPaymentGuardOptions.isTransient;
    if (typeof isTransient !== 'function') {
      throw new InvalidOptionError('isTransient', 'a function', isTransient);
    }
    this.keyPrefix = keyPrefix;
    this.isTransient = isTransient;
    this.waitTimeoutMs = options.waitTimeoutMs;
  }

  /**
   * Runs `call` once for `operation` and returns its result; duplicates get the same result or
   * the same (cached) error.
   */
  run<Params, Result>(
    operation: PaymentOperation<Params>,
    call: (ctx: ProviderCallContext<Params>) => Result | PromiseLike<Result>,
  ): Promise<Result> {
    const { key, scope = '', params, signal } = operation;
    if (typeof key !== 'string' || key.length === 0) {
      return Promise.reject(
        new InvalidKeyError('Expected the payment key to be a non-empty string'),
      );
    }
    if (typeof scope !== 'string') {
      return Promise.reject(new InvalidOptionError('scope', 'a string', scope));
    }
    const idempotencyKey = this.idempotencyKeyOf(key, scope);
    return this.executor.run(
      this.executorKeyOf(key, scope),
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
        fingerprint: params,
        shouldCacheError: (error) => !this.isTransient(error),
        ...(signal === undefined ? {} : { signal }),
        ...(this.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: this.waitTimeoutMs }),
      },
    );
  }

  /**
   * The downstream idempotency key of (scope, key): `ie_` and 40 hex digits of SHA-256 — within
   * every common provider's limits (Adyen 64, PayPal 108, Stripe 255 characters).
   */
  idempotencyKeyOf(key: string, scope = ''): string {
    const digest = createHash('sha256').update(`${scope}\u0000${key}`).digest('hex');
    return `ie_${digest.slice(0, 40)}`;
  }

  /** The executor key of (scope, key), for `executor.inspect()` and `executor.forget()`. */
  executorKeyOf(key: string, scope = ''): string {
    return `${this.keyPrefix}:${encodeURIComponent(scope)}:${encodeURIComponent(key)}`;
  }
}
