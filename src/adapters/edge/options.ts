import { type IdempotentExecutor, InvalidOptionError } from '../../index.js';

/** @throws InvalidOptionError unless `options` is an object. */
export function assertOptionsObject(
  options: unknown,
  expectation = 'an object',
): asserts options is object {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('options', expectation, options);
  }
}

/**
 * @throws InvalidOptionError unless `executor` looks like an `IdempotentExecutor` (duck-typed,
 * so an executor built by the other copy of the package, ESM or CommonJS, is accepted).
 */
export function assertExecutor(executor: unknown): asserts executor is IdempotentExecutor {
  if (
    executor === null ||
    typeof executor !== 'object' ||
    typeof (executor as { run?: unknown }).run !== 'function'
  ) {
    throw new InvalidOptionError('executor', 'an IdempotentExecutor', executor);
  }
}

/** `value`, or `fallback` when undefined. @throws InvalidOptionError unless a safe integer ≥ min. */
export function integerOption(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(
      name,
      min === 1 ? 'a positive integer' : `an integer of at least ${min}`,
      value,
    );
  }
  return value;
}

/** `value`, or `fallback` when undefined. @throws InvalidOptionError unless a function. */
export function functionOption<F extends Function>(
  name: string,
  value: F | undefined,
  fallback: F,
): F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') throw new InvalidOptionError(name, 'a function', value);
  return value;
}
