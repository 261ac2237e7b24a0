import { IdempotencyError } from '../../../src/index.js';
import { CardDeclinedError } from './errors.js';
import type { ErrorDescription } from './protocol.js';

/** What a test compares about an error, in a form that survives JSON between processes. */
export function describeError(error: unknown, depth = 0): ErrorDescription {
  const object = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const cause = 'cause' in object ? object.cause : undefined;
  return {
    constructorName:
      typeof error === 'object' && error !== null ? error.constructor?.name : undefined,
    isCardDeclinedError: error instanceof CardDeclinedError,
    isIdempotencyError: error instanceof IdempotencyError,
    name: jsonSafe(object.name),
    message: jsonSafe(object.message),
    code: jsonSafe(object.code),
    properties: Object.keys(object)
      .sort()
      .map((name) => [name, jsonSafe(object[name])] as const),
    cause:
      !('cause' in object) || depth > 5
        ? null
        : cause instanceof Error
          ? describeError(cause, depth + 1)
          : { value: jsonSafe(cause) },
  };
}

function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null');
  } catch {
    return String(value);
  }
}
