import {
  ErrorCode,
  type IdempotentExecutor,
  InvalidOptionError,
  isIdempotencyError,
} from '../../index.js';

/** Options shared by the Fetch, Express and Fastify front ends. */
export interface HttpIdempotencyOptions {
  /**
   * The request header carrying the key.
   * @defaultValue `'Idempotency-Key'`
   */
  readonly headerName?: string;
  /**
   * Methods guarded; others pass straight through.
   * @defaultValue `['POST', 'PATCH']`
   */
  readonly methods?: readonly string[];
  /**
   * A guarded request without the header gets 400; false lets it through unguarded.
   * @defaultValue `false`
   */
  readonly required?: boolean;
  /**
   * Whose key it is: the tenant, API key or user of the request. Strongly recommended: with the
   * default (one scope for everybody) two clients that pick the same key share one response.
   * @defaultValue `() => ''`
   */
  readonly scope?: (request: HttpRequestInfo) => string | Promise<string>;
  /**
   * What makes two requests "the same" besides the key: a reuse with another fingerprint gets
   * 422. The default is method + path + body (JSON bodies compared with keys sorted).
   * @defaultValue `defaultFingerprint`
   */
  readonly fingerprint?: (request: HttpRequestInfo) => unknown;
  /**
   * Whether 5xx responses are stored and replayed. By default they are not: the next attempt
   * with the key runs the handler again.
   * @defaultValue `false`
   */
  readonly storeServerErrors?: boolean;
  /**
   * Response headers stored and replayed besides `content-type` and `location` (lower case).
   * @defaultValue `[]`
   */
  readonly replayHeaders?: readonly string[];
  /**
   * Whether a duplicate of a request still running waits for its response (bounded by
   * `waitTimeoutMs`) or gets 409 at once.
   * @defaultValue `true`
   */
  readonly wait?: boolean;
  /**
   * How long a duplicate waits for the running request, ms; past it, 409 + `Retry-After`.
   * @defaultValue `10_000`
   */
  readonly waitTimeoutMs?: number;
  /**
   * `Retry-After` (seconds) sent with 409 and 503.
   * @defaultValue `1`
   */
  readonly retryAfterSeconds?: number;
}

/** The defaults of {@link HttpIdempotencyOptions}. */
export const defaultHttpIdempotencyOptions = Object.freeze({
  headerName: 'Idempotency-Key',
  methods: Object.freeze(['POST', 'PATCH']) as readonly string[],
  required: false,
  scope: (): string => '',
  fingerprint: defaultFingerprint,
  storeServerErrors: false,
  replayHeaders: Object.freeze([]) as readonly string[],
  wait: true,
  waitTimeoutMs: 10_000,
  retryAfterSeconds: 1,
});

/** The longest key accepted, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** What the adapter knows of a request, whatever the framework. */
export interface HttpRequestInfo {
  readonly method: string;
  /** The route (pattern) or path the request is for. */
  readonly route: string;
  /** The URL path. */
  readonly path: string;
  header(name: string): string | undefined;
  /** The body as parsed by the framework, or raw bytes, or undefined. */
  readonly body: unknown;
}

/** A response as stored and replayed. */
export interface StoredResponse {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/** What a front end must do with a request. */
export type Decision =
  | { readonly kind: 'pass' }
  | { readonly kind: 'respond'; readonly response: StoredResponse; readonly replayed: boolean };

/** Method + path + body, with JSON bodies parsed so that property order does not matter. */
export function defaultFingerprint(request: HttpRequestInfo): unknown {
  let body = request.body;
  if (body instanceof Uint8Array && /json/i.test(request.header('content-type') ?? '')) {
    try {
      body = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      // not JSON after all: compare the bytes
    }
  }
  return { method: request.method, path: request.path, body: body ?? null };
}

/** Thrown inside the executor for a response that must not be stored (a 5xx). */
class UnstoredResponse extends Error {
  override readonly name = 'UnstoredResponse';
  constructor(readonly response: StoredResponse) {
    super(`HTTP ${response.status} is not stored`);
  }
}

/**
 * The framework-free part: validates the key, runs the handler through the executor under
 * scope + method + route + key, and turns every outcome into a response to send.
 */
export class HttpIdempotency {
  private readonly settings: Required<HttpIdempotencyOptions>;
  private readonly methods: ReadonlySet<string>;
  private readonly keptHeaders: ReadonlySet<string>;

  constructor(
    private readonly executor: IdempotentExecutor,
    options: HttpIdempotencyOptions = {},
  ) {
    const settings = { ...defaultHttpIdempotencyOptions, ...options };
    for (const name of ['scope', 'fingerprint'] as const) {
      if (typeof settings[name] !== 'function')
        throw new InvalidOptionError(name, 'a function', settings[name]);
    }
    if (typeof settings.headerName !== 'string' || settings.headerName.length === 0) {
      throw new InvalidOptionError('headerName', 'a non-empty string', settings.headerName);
    }
    if (!Array.isArray(settings.methods) || settings.methods.some((m) => typeof m !== 'string')) {
      throw new InvalidOptionError('methods', 'an array of method names', settings.methods);
    }
    if (!Array.isArray(settings.replayHeaders)) {
      throw new InvalidOptionError(
        'replayHeaders',
        'an array of header names',
        settings.replayHeaders,
      );
    }
    for (const name of ['waitTimeoutMs', 'retryAfterSeconds'] as const) {
      const value = settings[name];
      if (!Number.isSafeInteger(value) || value <= 0)
        throw new InvalidOptionError(name, 'a positive integer', value);
    }
    this.settings = settings;
    this.methods = new Set(settings.methods.map((method) => method.toUpperCase()));
    this.keptHeaders = new Set([
      'content-type',
      'location',
      ...settings.replayHeaders.map((h) => h.toLowerCase()),
    ]);
  }

  /** Whether a response header is stored for replays. */
  keepsHeader(name: string): boolean {
    return this.keptHeaders.has(name.toLowerCase());
  }

  /**
   * Decides what to do with `request`: pass it through unguarded, or respond with what
   * `produce` (the handler, run at most once per key) or an earlier run produced.
   */
  async handle(
    request: HttpRequestInfo,
    produce: () => Promise<StoredResponse>,
  ): Promise<Decision> {
    if (!this.methods.has(request.method.toUpperCase())) return PASS;
    const raw = request.header(this.settings.headerName.toLowerCase());
    if (raw === undefined) {
      if (!this.settings.required) return PASS;
      return problem(400, 'missing-key', `The ${this.settings.headerName} header is required`);
    }
    const key = parseKey(raw);
    if (key === undefined) {
      return problem(
        400,
        'invalid-key',
        `The ${this.settings.headerName} header must hold 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`,
      );
    }
    let produced = false;
    try {
      const scope = await this.settings.scope(request);
      const recordKey = [scope, request.method.toUpperCase(), request.route, key]
        .map(encodeURIComponent)
        .join(':');
      const response = await this.executor.run(
        `http:${recordKey}`,
        async () => {
          produced = true;
          const response = await produce();
          if (response.status >= 500 && !this.settings.storeServerErrors)
            throw new UnstoredResponse(response);
          return response;
        },
        {
          fingerprint: this.settings.fingerprint(request),
          wait: this.settings.wait,
          waitTimeoutMs: this.settings.waitTimeoutMs,
          // Only responses are stored: a handler that throws is the framework's 500, retried.
          shouldCacheError: () => false,
        },
      );
      return { kind: 'respond', response, replayed: !produced };
    } catch (error) {
      const unstored = (error as { name?: unknown; response?: unknown } | null)?.response;
      if (
        (error as { name?: unknown } | null)?.name === 'UnstoredResponse' &&
        isStoredResponse(unstored)
      ) {
        return { kind: 'respond', response: unstored, replayed: !produced };
      }
      if (produced || !isIdempotencyError(error)) throw error;
      return this.problemFor(error.code);
    }
  }

  /** The headers of a response to store: the kept ones, as name/value pairs. */
  storedHeaders(
    headers: Iterable<readonly [string, string | number | readonly string[] | undefined]>,
  ): [string, string][] {
    const kept: [string, string][] = [];
    for (const [name, value] of headers) {
      if (value === undefined || !this.keepsHeader(name)) continue;
      kept.push([name.toLowerCase(), Array.isArray(value) ? value.join(', ') : String(value)]);
    }
    return kept;
  }

  private problemFor(code: string): Decision {
    const retry: [string, string] = ['retry-after', String(this.settings.retryAfterSeconds)];
    switch (code) {
      case ErrorCode.KEY_REUSED:
        return problem(422, 'key-reused', 'This idempotency key was used with another request');
      case ErrorCode.IN_PROGRESS:
      case ErrorCode.WAIT_TIMEOUT:
        return problem(
          409,
          'in-progress',
          'A request with this idempotency key is being processed',
          retry,
        );
      case ErrorCode.INVALID_KEY:
        return problem(400, 'invalid-key', 'The idempotency key is not valid');
      case ErrorCode.STORE_UNAVAILABLE:
        return problem(
          503,
          'store-unavailable',
          'Requests cannot be deduplicated right now',
          retry,
        );
      default:
        return problem(500, 'idempotency-error', code);
    }
  }
}

const PASS: Decision = { kind: 'pass' };

/** Visible ASCII, 1..255 characters; an RFC 8941 string (`"..."`) is unquoted first. */
function parseKey(raw: string): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) return undefined;
  return /^[\x21-\x7e]+$/.test(key) ? key : undefined;
}

function isStoredResponse(value: unknown): value is StoredResponse {
  const candidate = value as StoredResponse | null;
  return (
    typeof candidate?.status === 'number' &&
    Array.isArray(candidate.headers) &&
    candidate.body instanceof Uint8Array
  );
}

/** An `application/problem+json` response with a stable `type`. */
export function problem(
  status: number,
  type: string,
  detail: string,
  ...extra: [string, string][]
): Decision {
  const body = JSON.stringify({
    type: `https://idempotent-executor.dev/problems/http/${type}`,
    title: type.replace(/-/g, ' '),
    status,
    detail,
  });
  return {
    kind: 'respond',
    replayed: false,
    response: {
      status,
      headers: [['content-type', 'application/problem+json'], ...extra],
      body: Buffer.from(body),
    },
  };
}

/** The header marking a replayed response. */
export const REPLAYED_HEADER = 'idempotent-replayed';
