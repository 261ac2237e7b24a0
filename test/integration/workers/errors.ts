/** Error classes every worker registers in `errorClasses`, and the tests construct. */

/** A payment-provider style error: a `code`, a field of its own and (often) a `cause`. */
export class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
  constructor(
    message: string,
    readonly declineCode: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A transient failure users would not cache (`shouldCacheError` returns false for it). */
export class GatewayTimeoutError extends Error {
  override readonly name = 'GatewayTimeoutError';
  readonly code = 'gateway_timeout';
}

/**
 * The declined-card error the workers throw: extra own properties beyond the class fields and
 * a two-level `cause` chain (Error -> TypeError).
 */
export function declinedCard(): CardDeclinedError {
  const error = new CardDeclinedError('Your card was declined', 'insufficient_funds', {
    cause: new Error('issuer answered 51', { cause: new TypeError('socket reset by issuer') }),
  });
  Object.assign(error, { attempt: 3, details: { network: 'visa', retryable: false } });
  return error;
}
