// Which provider errors mean "no answer yet" (not cached: the next attempt calls the provider
// again, with the same downstream key) and which are the provider's answer (cached and replayed).
// Written against the errors the SDKs named in docs/adapters/payments.md really throw:
//
// - stripe-node: every error is a `StripeError` whose `name` is plain 'Error' (the classes never
//   set it) and whose `type` is the class name. A timeout, a refused connection or a cut response
//   is a `StripeConnectionError` with no `statusCode`, no `code` and the network error in `detail`
//   (not `cause`). A 409 (another request holds the idempotency key) is a `StripeAPIError` with
//   `statusCode` 409, whatever the body's `type`: stripe-node maps `idempotency_error` to
//   `StripeIdempotencyError` only for 400 and 404.
// - Adyen's @adyen/api-library: `HttpClientException` and `ApiException` implement Error without
//   extending it (not `instanceof Error`); a request that got no response is an `ApiException`
//   carrying only the socket error's message, with `statusCode` 500 (older versions: none).
// - PayPal's @paypal/paypal-server-sdk (APIMatic core over axios): an HTTP error is an `ApiError`
//   with `statusCode`; a network failure or timeout is axios's own error (`code` ECONNREFUSED,
//   ECONNABORTED, ...); an aborted call is APIMatic's `AbortError`, whose `name` is plain 'Error'.

/** Codes of Node's network stack, undici and axios that mean the exchange did not complete. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'ERR_NETWORK',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Names (or, for classes that never set `name`, class names) of timeouts and aborts. */
const TRANSIENT_NAMES = new Set(['AbortError', 'TimeoutError']);

/**
 * stripe-node classes, by the `type` every instance carries (a brand that also holds across two
 * copies of the SDK): no answer was received, or the provider asked to slow down (a
 * `StripeRateLimitError` can come with status 400 and code `rate_limit`).
 */
const STRIPE_TRANSIENT_TYPES = new Set(['StripeConnectionError', 'StripeRateLimitError']);

/** How deep the `cause` / `detail` chain is followed. */
const MAX_DEPTH = 5;

interface ProviderErrorFields {
  readonly name?: unknown;
  readonly type?: unknown;
  readonly code?: unknown;
  readonly status?: unknown;
  readonly statusCode?: unknown;
  readonly response?: { readonly status?: unknown } | null;
  readonly cause?: unknown;
  readonly detail?: unknown;
}

/**
 * The default test for a provider error that must not be cached:
 *
 * - HTTP 5xx, 408, 409 or 429 (read from `status`, `statusCode` or `response.status`): the
 *   provider failed, timed out, is still processing the same idempotency key (Stripe's 409
 *   `idempotency_key_in_use`) or asked to slow down;
 * - stripe-node's `StripeConnectionError` (timeouts, refused or cut connections) and
 *   `StripeRateLimitError`, and a `StripeAPIError` without a status (a response that could not
 *   be read);
 * - a request that got no response: Node, undici and axios network codes (`ECONNREFUSED`,
 *   `ETIMEDOUT`, `ECONNABORTED`, ...), `AbortError` / `TimeoutError`, Adyen's `ApiException`
 *   without a status;
 * - any of these as the error's `cause`, or as stripe-node's `detail`.
 *
 * Everything else (declines, validation errors, other 4xx, errors of unknown shape) is the
 * provider's answer and is cached.
 */
export function isTransientProviderError(error: unknown): boolean {
  for (let depth = 0; depth < MAX_DEPTH && isObject(error); depth++) {
    const fields = error as ProviderErrorFields;
    if (typeof fields.type === 'string' && STRIPE_TRANSIENT_TYPES.has(fields.type)) return true;
    const status = statusOf(fields);
    if (status !== undefined) return isTransientStatus(status);
    if (fields.type === 'StripeAPIError' || fields.name === 'ApiException') return true;
    if (TRANSIENT_NAMES.has(String(fields.name)) || TRANSIENT_NAMES.has(classNameOf(error))) {
      return true;
    }
    if (typeof fields.code === 'string' && TRANSIENT_CODES.has(fields.code)) return true;
    error = fields.cause ?? fields.detail;
  }
  return false;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

function statusOf(fields: ProviderErrorFields): number | undefined {
  const status = fields.status ?? fields.statusCode ?? fields.response?.status;
  return typeof status === 'number' ? status : undefined;
}

function isTransientStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 409 || status === 429;
}

function classNameOf(error: object): string {
  const name: unknown = (error as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' ? name : '';
}
