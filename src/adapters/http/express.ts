import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { IdempotentExecutor } from '../../index.js';
import {
  HttpIdempotency,
  type HttpIdempotencyOptions,
  type HttpRequestInfo,
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
export interface ExpressIdempotencyOptions extends HttpIdempotencyOptions {
  /**
   * The route a request belongs to (part of the key).
   * @defaultValue the URL path
   */
  readonly route?: (request: ExpressRequestLike) => string;
}

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
  return (req, res, next) => {
    const path = req.originalUrl.split('?')[0] ?? '/';
    const request: HttpRequestInfo = {
      method: req.method,
      route: options.route?.(req) ?? path,
      path,
      header: (name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      },
      body: req.body,
    };
    let capture: Capture | undefined;
    http
      .handle(request, () => {
        capture = new Capture(res, http);
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
 * Copies what the chain sends on `res` while letting it through. Only the final `end` is held
 * back until the executor has stored the response (or freed the key): a client that retries
 * the moment it has its answer then finds the key settled, never still running.
 */
class Capture {
  readonly response: Promise<StoredResponse>;
  private readonly chunks: Buffer[] = [];
  private heldEnd: (() => void) | undefined;
  private finished = false;

  constructor(res: ServerResponse, http: HttpIdempotency) {
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    this.response = new Promise((resolve, reject) => {
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
        });
        return res;
      };
      res.once('close', () => {
        if (!res.writableEnded)
          reject(new Error('The connection closed before the response was complete'));
      });
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
