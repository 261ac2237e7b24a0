/**
 * Every error this library throws extends {@link IdempotencyError} and carries a stable `code`.
 * Errors thrown by the user's own function are never wrapped in these: see {@link ReplayedError}.
 */

import { hasBrand, setBrand } from '../brand.js';

/** The stable error codes. Match on `err.code`, never on messages. */
export const ErrorCode = {
  IN_PROGRESS: 'IDEMPOTENCY_IN_PROGRESS',
  WAIT_TIMEOUT: 'IDEMPOTENCY_WAIT_TIMEOUT',
  KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  LEASE_LOST: 'IDEMPOTENCY_LEASE_LOST',
  STORE_UNAVAILABLE: 'IDEMPOTENCY_STORE_UNAVAILABLE',
  INVALID_KEY: 'IDEMPOTENCY_INVALID_KEY',
  INVALID_OPTION: 'IDEMPOTENCY_INVALID_OPTION',
  SERIALIZATION: 'IDEMPOTENCY_SERIALIZATION',
  CORRUPT_RECORD: 'IDEMPOTENCY_CORRUPT_RECORD',
  ABORTED: 'IDEMPOTENCY_ABORTED',
  OUTCOME_NOT_STORED: 'IDEMPOTENCY_OUTCOME_NOT_STORED',
} as const;

/** Union of every {@link ErrorCode} value. */
export type IdempotencyErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The brand of every {@link IdempotencyError}, the same in every copy of the package. */
const IDEMPOTENCY_ERROR_BRAND = Symbol.for('idempotent-executor.IdempotencyError');

/**
 * Base class of every error the library itself throws. Check with {@link isIdempotencyError} (or
 * by `code`) rather than `instanceof`, which fails across two loaded copies of the package.
 */
export abstract class IdempotencyError extends Error {
  /** Stable, machine-readable code; see `docs/errors.md`. */
  abstract readonly code: IdempotencyErrorCode;
  /** The idempotency key the error is about, when there is one. */
  readonly key: string | undefined;

  constructor(message: string, key?: string, options?: ErrorOptions) {
    super(message, options);
    this.key = key;
  }
}

// On the prototype, not enumerable: a replayed copy of an error of ours (fn's own error, rebuilt
// from its own properties) does not pass for one.
setBrand(IdempotencyError, IDEMPOTENCY_ERROR_BRAND);

/** `wait: false` was asked and another execution of the key is running. */
export class InProgressError extends IdempotencyError {
  override readonly name = 'InProgressError';
  readonly code = ErrorCode.IN_PROGRESS;
  constructor(key: string) {
    super(`Another execution of key "${key}" is in progress`, key);
  }
}

/** A duplicate waited `waitTimeoutMs` and the running execution did not finish. */
export class WaitTimeoutError extends IdempotencyError {
  override readonly name = 'WaitTimeoutError';
  readonly code = ErrorCode.WAIT_TIMEOUT;
  /** How long the caller waited, in milliseconds. */
  readonly waitedMs: number;
  constructor(key: string, waitedMs: number) {
    super(`Gave up waiting for the running execution of key "${key}" after ${waitedMs} ms`, key);
    this.waitedMs = waitedMs;
  }
}

/** The key's record was made with another fingerprint (the same key reused for other input). */
export class KeyReusedError extends IdempotencyError {
  override readonly name = 'KeyReusedError';
  readonly code = ErrorCode.KEY_REUSED;
  constructor(key: string) {
    super(`Key "${key}" was already used with a different fingerprint`, key);
  }
}

/**
 * The lease ran out or was taken while fn ran, so this caller's outcome was not stored.
 * Another execution owns (or will own) the key's record.
 */
export class LeaseLostError extends IdempotencyError {
  override readonly name = 'LeaseLostError';
  readonly code = ErrorCode.LEASE_LOST;
  constructor(key: string, options?: ErrorOptions) {
    super(
      `The lease on key "${key}" was lost; this execution's outcome was not stored`,
      key,
      options,
    );
  }
}

/** The store could not be reached in time; fn was not run by this call. */
export class StoreUnavailableError extends IdempotencyError {
  override readonly name = 'StoreUnavailableError';
  readonly code = ErrorCode.STORE_UNAVAILABLE;
  constructor(message: string, key?: string, options?: ErrorOptions) {
    super(message, key, options);
  }
}

/** The key is not a non-empty string within the length limit. */
export class InvalidKeyError extends IdempotencyError {
  override readonly name = 'InvalidKeyError';
  readonly code = ErrorCode.INVALID_KEY;
  constructor(message: string) {
    super(message);
  }
}

/** An option passed to the constructor or to `run()` is out of range or of the wrong type. */
export class InvalidOptionError extends IdempotencyError {
  override readonly name = 'InvalidOptionError';
  readonly code = ErrorCode.INVALID_OPTION;
  /** The name of the offending option. */
  readonly option: string;
  constructor(option: string, expectation: string, got: unknown) {
    super(`Expected \`${option}\` to be ${expectation}, got ${describe(got)}`);
    this.option = option;
  }
}

/**
 * A value, error or fingerprint cannot be encoded, or the record would exceed `maxRecordBytes`.
 * Nothing was stored and the key was freed.
 */
export class SerializationError extends IdempotencyError {
  override readonly name = 'SerializationError';
  readonly code = ErrorCode.SERIALIZATION;
  constructor(message: string, key?: string, options?: ErrorOptions) {
    super(message, key, options);
  }
}

/**
 * fn already ran for this key, but its outcome was over `maxRecordBytes`, so only the fact that
 * it ran was stored: a duplicate gets this instead of running fn a second time. The record
 * expires with the key's `ttlMs`; `forget(key)` clears it sooner.
 */
export class OutcomeNotStoredError extends IdempotencyError {
  override readonly name = 'OutcomeNotStoredError';
  readonly code = ErrorCode.OUTCOME_NOT_STORED;
  /** The encoded size of the outcome that was not kept, bytes. */
  readonly outcomeBytes: number;
  constructor(key: string, outcomeBytes: number) {
    super(
      `Key "${key}" was executed, but its outcome (${outcomeBytes} bytes) was over maxRecordBytes and was not stored`,
      key,
    );
    this.outcomeBytes = outcomeBytes;
  }
}

/** The bytes stored under the key do not decode as a record (or the key holds another type). */
export class CorruptRecordError extends IdempotencyError {
  override readonly name = 'CorruptRecordError';
  readonly code = ErrorCode.CORRUPT_RECORD;
  constructor(message: string, key?: string, options?: ErrorOptions) {
    super(message, key, options);
  }
}

/** The caller's own `signal` aborted its wait. Other callers and the execution go on. */
export class AbortedError extends IdempotencyError {
  override readonly name = 'AbortedError';
  readonly code = ErrorCode.ABORTED;
  constructor(key: string, reason: unknown) {
    super(`Waiting for key "${key}" was aborted`, key, { cause: reason });
  }
}

/**
 * A cached error replayed from a record whose class is not in `errorClasses`: it keeps the
 * original `name`, `message`, `code`, own enumerable properties and `cause`, but not the class.
 * It is not an {@link IdempotencyError}: its `code` is whatever the original error carried.
 */
export class ReplayedError extends Error {
  /** The original error's `code`, if it had one. */
  declare readonly code?: unknown;
  [property: string]: unknown;
}

/**
 * True when `err` is an error thrown by this library (any code), by whichever copy of the package
 * made it: it checks the brand every copy puts on its errors, not the class.
 */
export function isIdempotencyError(err: unknown): err is IdempotencyError {
  return hasBrand(err, IDEMPOTENCY_ERROR_BRAND);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol' || typeof value === 'bigint') return String(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}
