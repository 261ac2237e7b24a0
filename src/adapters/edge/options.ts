import { type IdempotentExecutor, InvalidOptionError } from '../../index.js';
import { positiveInteger } from '../../option-checks.js';

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
  return value === undefined ? fallback : positiveInteger(name, value, min);
}

export { optionalFunction as functionOption } from '../../option-checks.js';
