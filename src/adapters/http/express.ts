import { subscribe } from 'node:diagnostics_channel';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { IdempotentExecutor } from '../../index.js';
import {
  HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpRequestInfo,
  incomingHeader,
  type ProducedResponse,
  pathOf,
  REPLAYED_HEADER,
  type StoredResponse,
} from './core.js';

/** The parts of an Express request the middleware reads (no runtime dependency on Express). */
export interface ExpressRequestLike {
  readonly method: string;
  readonly originalUrl: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: unknown;
}

/** Options of {@link idempotencyMiddleware}. */
export interface ExpressIdempotencyOptions extends HttpIdempotencyOptions {}

/**
 * Express 5 middleware: a guarded request with an `Idempotency-Key` runs the rest of the chain
 * at most once per key; duplicates get the stored status, body and headers. Mount it after your
 * body parser (the default fingerprint reads `req.body`) and before the routes it guards.
 */
export function idempotencyMiddleware(
  executor: IdempotentExecutor,
  options: ExpressIdempotencyOptions = {},
): (req: ExpressRequestLike, res: ServerResponse, next: (error?: unknown) => void) => void {
  const http = new HttpIdempotency(executor, options);
  watchRouterErrors();
  return (req, res, next) => {
    const request: HttpRequestInfo = {
      method: req.method,
      path: pathOf(req.originalUrl),
      header: incomingHeader(req.headers),
      body: req.body,
    };
    let capture: Capture | undefined;
    http
      .handle(request, () => {
        capture = new Capture(req, res, http);
        next();
        return capture.response;
      })
      .then(
        (decision) => {
          if (capture !== undefined) capture.finish();
          else if (decision.kind === 'pass') next();
          else send(res, decision.response, decision.replayed);
        },
        (error: unknown) => {
          if (capture !== undefined) capture.finish();
          else next(error);
        },
      );
  };
}

/**
 * Requests whose chain met an error: a handler threw, rejected or called `next(err)`, or an
 * error-handling middleware ran. The response then written is the framework's answer to an
 * error, which is never stored.
 *
 * The router hands every later layer its own `next`, not the one this middleware was given, so
 * wrapping that `next` cannot see a later layer's error. The router (2.3 and later, as resolved
 * by Express 5) reports them on the `express.router.request` diagnostics channel instead.
 */
const erroredRequests = new WeakSet<object>();
let watchingRouterErrors = false;

interface RouterTraceContext {
  readonly req?: unknown;
  readonly errorHandler?: boolean;
}

function markErrored(message: unknown): void {
  const req = (message as RouterTraceContext | null)?.req;
  if (typeof req === 'object' && req !== null) erroredRequests.add(req);
}

function watchRouterErrors(): void {
  if (watchingRouterErrors) return;
  watchingRouterErrors = true;
  subscribe('tracing:express.router.request:error', markErrored);
  // An error raised where no handler is traced (route matching) still reaches error handlers.
  subscribe('tracing:express.router.request:start', (message) => {
    if ((message as RouterTraceContext | null)?.errorHandler === true) markErrored(message);
  });
}

/**
 * Copies what the chain sends on `res` while letting it through. Only the final `end` is held
 * back until the executor has stored the response (or freed the key): a client that retries
 * the moment it has its answer then finds the key settled, never still running.
 *
 * A client that goes away changes nothing here: the chain's response is still captured when
 * it is produced and stored, so the client's retry waits for it or replays it instead of
 * running the handler again.
 */
class Capture {
  readonly response: Promise<ProducedResponse>;
  private readonly chunks: Buffer[] = [];
  private heldEnd: (() => void) | undefined;
  private finished = false;

  constructor(req: object, res: ServerResponse, http: HttpIdempotency) {
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    this.response = new Promise((resolve) => {
      (res as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
        this.keep(chunk, rest[0]);
        return write(chunk, ...rest);
      };
      (res as { end: unknown }).end = (chunk?: unknown, ...rest: unknown[]) => {
        if (typeof chunk !== 'function') this.keep(chunk, rest[0]);
        this.heldEnd = () => end(chunk, ...rest);
        if (this.finished) this.finish();
        resolve({
          status: res.statusCode,
          headers: http.storedHeaders(Object.entries(res.getHeaders())),
          body: Buffer.concat(this.chunks),
          fromError: erroredRequests.has(req),
        });
        return res;
      };
    });
  }

  /** Lets the held `end` through (now, or as soon as the chain calls it). */
  finish(): void {
    this.finished = true;
    const end = this.heldEnd;
    this.heldEnd = undefined;
    end?.();
  }

  private keep(chunk: unknown, encoding: unknown): void {
    if (typeof chunk === 'string') {
      this.chunks.push(
        Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
      );
    } else if (chunk instanceof Uint8Array) {
      this.chunks.push(Buffer.from(chunk));
    }
  }
}

function send(res: ServerResponse, stored: StoredResponse, replayed: boolean): void {
  for (const [name, value] of stored.headers) res.setHeader(name, value);
  if (replayed) res.setHeader(REPLAYED_HEADER, 'true');
  res.statusCode = stored.status;
  res.end(Buffer.from(stored.body));
}
