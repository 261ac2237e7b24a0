// Option checks shared by the core and the adapters' edge, so that every option of the library
// is refused with the same words. Neither layer owns them: both import them from here.
import { InvalidOptionError } from './core/errors.js';

/** `value` when it is a safe integer of at least `min`. @throws InvalidOptionError otherwise. */
export function positiveInteger(name: string, value: unknown, min = 1): number {
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
export function optionalFunction<F extends Function>(
  name: string,
  value: F | undefined,
  fallback: F,
): F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') throw new InvalidOptionError(name, 'a function', value);
  return value;
}
