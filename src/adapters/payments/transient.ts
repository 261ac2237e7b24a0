/** Error codes of Node's network stack and undici that mean "try again", not "no". */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

const TRANSIENT_NAMES = new Set(['AbortError', 'TimeoutError']);

/**
 * The default test for a provider error that must not be cached: a network failure, a timeout,
 * an HTTP 5xx, 408 or 429 (read from `status`, `statusCode` or `response.status`, as the common
 * provider SDKs expose it), or any of these as the error's `cause`. Everything else (declines,
 * validation errors, 4xx) is a business answer and is cached.
 */
export function isTransientProviderError(error: unknown): boolean {
  for (let depth = 0; depth < 5 && error instanceof Error; depth++) {
    const fields = error as Error & {
      status?: unknown;
      statusCode?: unknown;
      response?: { status?: unknown };
      code?: unknown;
    };
    const status = fields.status ?? fields.statusCode ?? fields.response?.status;
    if (typeof status === 'number') return status >= 500 || status === 408 || status === 429;
    if (TRANSIENT_NAMES.has(error.name)) return true;
    if (typeof fields.code === 'string' && TRANSIENT_CODES.has(fields.code)) return true;
    error = error.cause;
  }
  return false;
}
