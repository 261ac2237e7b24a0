import type { IncomingHttpHeaders } from 'node:http';
import type { Attributes } from '@opentelemetry/api';
import { type IdempotentExecutor, InvalidOptionError, isIdempotencyError } from '../../index.js';
import {
  answerForCode,
  assertExecutor,
  assertOptionsObject,
  functionOption,
  integerOption,
  isWellFormed,
  problemAnswer,
  scopedKey,
} from '../edge/index.js';
import { fingerprintBody } from './body-fingerprint.js';

/** Options shared by the Fetch, Express and Fastify front ends. */
export interface HttpIdempotencyOptions {
  /**
   * The request header carrying the key (any case: header names are case-insensitive).
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
   * Whose key it is: the tenant, API key or user of the request. Strongly recommended: without
   * it, everybody shares one scope, and two clients that pick the same key share one response.
   * It must return a non-empty, well-formed string: anything else (undefined, `''`, a number, a
   * lone surrogate) fails the request with 500 problem+json naming `scope`, never a shared
   * scope. A `scope` that throws hands its error to the framework (it can answer 401).
   * @defaultValue one scope for every request
   */
  readonly scope?: (request: HttpRequestInfo) => string | undefined | Promise<string | undefined>;
  /**
   * What makes two requests with one key "the same" besides their method and path (which are
   * always compared): a reuse with another fingerprint gets 422. The value must be encodable by
   * the executor (JSON-like); the default, a digest of the body, always is.
   * @defaultValue `defaultFingerprint` (the body; JSON compared with keys sorted)
   */
  readonly fingerprint?: (request: HttpRequestInfo) => unknown;
  /**
   * Whether 5xx responses are stored and replayed. By default they are not: the next attempt
   * with the key runs the handler again.
   * @defaultValue `false`
   */
  readonly storeServerErrors?: boolean;
  /**
   * Response headers stored and replayed besides `content-type` and `location` (any case).
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

/** The defaults of {@link HttpIdempotencyOptions} (`scope`: none, one scope for everybody). */
export const defaultHttpIdempotencyOptions = Object.freeze({
  headerName: 'Idempotency-Key',
  methods: Object.freeze(['POST', 'PATCH']) as readonly string[],
  required: false,
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
  /** The concrete URL path, without the query (`/orders/1/items`, not the route pattern). */
  readonly path: string;
  /** The route pattern (`/orders/:id`) where the framework knows it: the `http.route` attribute. */
  readonly route?: string | undefined;
  /** A request header by name, in any case (`'X-Tenant'` and `'x-tenant'` are one header). */
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

/** A response the handler's side produced, as a front end hands it to {@link HttpIdempotency}. */
export interface ProducedResponse extends StoredResponse {
  /**
   * The framework made it from an error the handler threw (or passed on): it is sent, never
   * stored, and the key is freed, as when the handler throws in the Fetch front end.
   */
  readonly fromError?: boolean;
}

/** What a front end must do with a request. */
export type Decision =
  | { readonly kind: 'pass' }
  | { readonly kind: 'respond'; readonly response: StoredResponse; readonly replayed: boolean };

/**
 * The body, as a digest that cannot fail: JSON (parsed, or bytes with a JSON `content-type`)
 * compared with keys sorted, anything else as bytes or text. Method and path are compared
 * whatever the fingerprint, so they are not part of it.
 */
export function defaultFingerprint(request: HttpRequestInfo): unknown {
  return fingerprintBody(request.body, request.header('content-type'));
}

/**
 * `header(name)` over Node's `IncomingHttpHeaders` (whose names are lower case): `name` in any
 * case, repeated headers joined with `, `.
 */
export function incomingHeader(headers: IncomingHttpHeaders): (name: string) => string | undefined {
  return (name) => {
    const lower = name.toLowerCase();
    if (!Object.hasOwn(headers, lower)) return undefined;
    const value = headers[lower];
    return Array.isArray(value) ? value.join(', ') : typeof value === 'string' ? value : undefined;
  };
}

/** The path of a request target (`/a/b?c` -> `/a/b`). */
export function pathOf(target: string): string {
  const query = target.indexOf('?');
  return (query === -1 ? target : target.slice(0, query)) || '/';
}

/** Thrown inside the executor for a response that must not be stored (a 5xx, an error's). */
class UnstoredResponse extends Error {
  override readonly name = 'UnstoredResponse';
  constructor(readonly response: StoredResponse) {
    super(`HTTP ${response.status} is not stored`);
  }
}

interface Settings {
  readonly headerName: string;
  readonly required: boolean;
  readonly scope: HttpIdempotencyOptions['scope'];
  readonly fingerprint: (request: HttpRequestInfo) => unknown;
  readonly storeServerErrors: boolean;
  readonly wait: boolean;
  readonly waitTimeoutMs: number;
  readonly retryAfterSeconds: number;
}

/** The scope part of the executor key when no `scope` option is given (user scopes are never empty). */
const SHARED_SCOPE = '';

/**
 * The framework-free part: validates the key, runs the handler through the executor under
 * scope + key, compares method + path + fingerprint, and turns every outcome into a response.
 */
export class HttpIdempotency {
  private readonly settings: Settings;
  private readonly methods: ReadonlySet<string>;
  private readonly keptHeaders: ReadonlySet<string>;

  constructor(
    private readonly executor: IdempotentExecutor,
    options: HttpIdempotencyOptions = {},
  ) {
    assertExecutor(executor);
    assertOptionsObject(options);
    const headerName = options.headerName ?? defaultHttpIdempotencyOptions.headerName;
    if (typeof headerName !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(headerName)) {
      throw new InvalidOptionError('headerName', 'an HTTP header name', headerName);
    }
    const methods = options.methods ?? defaultHttpIdempotencyOptions.methods;
    if (!Array.isArray(methods) || methods.some((m) => typeof m !== 'string')) {
      throw new InvalidOptionError('methods', 'an array of method names', methods);
    }
    const replayHeaders = options.replayHeaders ?? defaultHttpIdempotencyOptions.replayHeaders;
    if (!Array.isArray(replayHeaders) || replayHeaders.some((h) => typeof h !== 'string')) {
      throw new InvalidOptionError('replayHeaders', 'an array of header names', replayHeaders);
    }
    this.settings = {
      headerName,
      required: booleanOption('required', options.required, defaultHttpIdempotencyOptions.required),
      scope:
        options.scope === undefined ? undefined : functionOption('scope', options.scope, noScope),
      fingerprint: functionOption(
        'fingerprint',
        options.fingerprint,
        defaultHttpIdempotencyOptions.fingerprint,
      ),
      storeServerErrors: booleanOption(
        'storeServerErrors',
        options.storeServerErrors,
        defaultHttpIdempotencyOptions.storeServerErrors,
      ),
      wait: booleanOption('wait', options.wait, defaultHttpIdempotencyOptions.wait),
      waitTimeoutMs: integerOption(
        'waitTimeoutMs',
        options.waitTimeoutMs,
        defaultHttpIdempotencyOptions.waitTimeoutMs,
      ),
      retryAfterSeconds: integerOption(
        'retryAfterSeconds',
        options.retryAfterSeconds,
        defaultHttpIdempotencyOptions.retryAfterSeconds,
      ),
    };
    this.methods = new Set(methods.map((method) => method.toUpperCase()));
    this.keptHeaders = new Set([
      'content-type',
      'location',
      ...replayHeaders.map((h) => h.toLowerCase()),
    ]);
  }

  /** Whether requests with `method` are guarded (others pass through without a look). */
  guards(method: string): boolean {
    return this.methods.has(method.toUpperCase());
  }

  /** Whether a response header is stored for replays. */
  keepsHeader(name: string): boolean {
    return this.keptHeaders.has(name.toLowerCase());
  }

  /**
   * Decides what to do with `request`: pass it through unguarded, or respond with what
   * `produce` (the handler, run at most once per scope + key) or an earlier run produced.
   * Once `produce` has given this request a response, this request gets it, whatever happens
   * to the record.
   */
  async handle(
    request: HttpRequestInfo,
    produce: () => Promise<ProducedResponse>,
  ): Promise<Decision> {
    if (!this.guards(request.method)) return PASS;
    const { headerName } = this.settings;
    const raw = request.header(headerName);
    if (raw === undefined) {
      if (!this.settings.required) return PASS;
      return this.problem(400, 'missing-key', `The ${headerName} header is required`);
    }
    const key = parseKey(raw);
    if (key === undefined) {
      return this.problem(
        400,
        'invalid-key',
        `The ${headerName} header must hold 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`,
      );
    }
    let scope = SHARED_SCOPE;
    if (this.settings.scope !== undefined) {
      const returned: unknown = await this.settings.scope(request);
      if (typeof returned !== 'string' || returned.length === 0 || !isWellFormed(returned)) {
        // Never fall back to a shared scope: that would replay one tenant's response to another.
        return this.problem(
          500,
          'invalid-scope',
          `Expected the \`scope\` option to return a non-empty, well-formed string, got ${describeScope(returned)}`,
        );
      }
      scope = returned;
    }
    // Keyed by scope + key only (one key names one request in a scope, as at Stripe); the
    // method and concrete path are always compared, so a key reused elsewhere is 422.
    const fingerprint = {
      method: request.method.toUpperCase(),
      path: request.path,
      request: this.settings.fingerprint(request),
    };
    let ran = false;
    let produced: StoredResponse | undefined;
    try {
      const response = await this.executor.run(
        scopedKey('http', [scope, key]),
        async () => {
          ran = true;
          const response = await produce();
          produced = response;
          if (
            response.fromError === true ||
            (response.status >= 500 && !this.settings.storeServerErrors)
          ) {
            throw new UnstoredResponse(stored(response));
          }
          return stored(response);
        },
        {
          fingerprint,
          wait: this.settings.wait,
          waitTimeoutMs: this.settings.waitTimeoutMs,
          // Only responses are stored: a handler that throws is the framework's answer, retried.
          shouldCacheError: () => false,
          attributes: () => httpAttributes(fingerprint.method, request),
          resultAttributes: httpResultAttributes,
        },
      );
      return { kind: 'respond', response, replayed: !ran };
    } catch (error) {
      // The handler answered this request (the record may still be missing: lease lost, store
      // down): the client gets that answer, not a problem about the bookkeeping.
      if (produced !== undefined)
        return { kind: 'respond', response: stored(produced), replayed: false };
      // A duplicate that waited on an unstored response (same process, or another one through
      // the release notice) gets that response too.
      const unstored = (error as { response?: unknown } | null)?.response;
      if (
        (error as { name?: unknown } | null)?.name === 'UnstoredResponse' &&
        isStoredResponse(unstored)
      ) {
        return { kind: 'respond', response: unstored, replayed: true };
      }
      if (ran || !isIdempotencyError(error)) throw error;
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
    const { status, type, retry } = answerForCode(code);
    return this.problem(status, type, DETAILS[type] ?? code, retry);
  }

  private problem(status: number, type: string, detail: string, retry = false): Decision {
    const retryAfter: (readonly [string, string])[] = retry
      ? [['retry-after', String(this.settings.retryAfterSeconds)]]
      : [];
    const answer = problemAnswer('http', status, type, detail, ...retryAfter);
    return {
      kind: 'respond',
      replayed: false,
      response: { status, headers: answer.headers, body: Buffer.from(answer.body) },
    };
  }
}

const PASS: Decision = { kind: 'pass' };

/** What a client is told for each problem type the status map gives. */
const DETAILS: Readonly<Record<string, string>> = {
  'key-reused': 'This idempotency key was used with another request (method, path or payload)',
  'in-progress': 'A request with this idempotency key is being processed',
  'invalid-key': 'The idempotency key is not valid',
  'store-unavailable': 'Requests cannot be deduplicated right now',
  'outcome-not-stored':
    'The request with this idempotency key was processed, but its response was too large to store',
};

function noScope(): string {
  return SHARED_SCOPE;
}

function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, 'a boolean', value);
  return value;
}

function describeScope(value: unknown): string {
  if (value === '') return 'an empty string';
  if (typeof value === 'string') return 'a string that is not well-formed Unicode';
  if (value === null || value === undefined) return String(value);
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Visible ASCII, 1..255 characters; an RFC 8941 string (`"..."`) is unquoted first. */
function parseKey(raw: string): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) return undefined;
  return /^[\x21-\x7e]+$/.test(key) ? key : undefined;
}

/** Status, headers and body only (a front end's extra fields are not stored). */
function stored(response: StoredResponse): StoredResponse {
  return { status: response.status, headers: response.headers, body: response.body };
}

function isStoredResponse(value: unknown): value is StoredResponse {
  const candidate = value as StoredResponse | null;
  return (
    typeof candidate?.status === 'number' &&
    Array.isArray(candidate.headers) &&
    candidate.body instanceof Uint8Array
  );
}

/** The header marking a replayed response. */
export const REPLAYED_HEADER = 'idempotent-replayed';

/** The run span's attributes, by the HTTP semantic conventions. */
function httpAttributes(method: string, request: HttpRequestInfo): Attributes {
  const attributes: Attributes = { 'http.request.method': method, 'url.path': request.path };
  if (request.route !== undefined) attributes['http.route'] = request.route;
  return attributes;
}

function httpResultAttributes(response: unknown): Attributes | undefined {
  return isStoredResponse(response) ? { 'http.response.status_code': response.status } : undefined;
}
