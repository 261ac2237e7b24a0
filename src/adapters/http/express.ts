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
    let ranHere = false;
    http
      .handle(request, () => {
        ranHere = true;
        const captured = capture(res, http);
        next();
        return captured;
      })
      .then(
        (decision) => {
          if (decision.kind === 'pass') next();
          // The chain already answered this client; the executor only kept a copy.
          else if (!ranHere) send(res, decision.response, decision.replayed);
        },
        (error: unknown) => {
          if (!ranHere) next(error);
        },
      );
  };
}

/** Copies what the chain sends on `res` while letting it through untouched. */
function capture(res: ServerResponse, http: HttpIdempotency): Promise<StoredResponse> {
  const chunks: Buffer[] = [];
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  const keep = (chunk: unknown, encoding: unknown) => {
    if (typeof chunk === 'string')
      chunks.push(
        Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'),
      );
    else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
  };
  return new Promise((resolve, reject) => {
    (res as { write: unknown }).write = (chunk: unknown, ...rest: unknown[]) => {
      keep(chunk, rest[0]);
      return write(chunk, ...rest);
    };
    (res as { end: unknown }).end = (chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'function') keep(chunk, rest[0]);
      const result = end(chunk, ...rest);
      resolve({
        status: res.statusCode,
        headers: http.storedHeaders(Object.entries(res.getHeaders())),
        body: Buffer.concat(chunks),
      });
      return result;
    };
    res.once('close', () => {
      if (!res.writableEnded)
        reject(new Error('The connection closed before the response was complete'));
    });
  });
}

function send(res: ServerResponse, stored: StoredResponse, replayed: boolean): void {
  for (const [name, value] of stored.headers) res.setHeader(name, value);
  if (replayed) res.setHeader(REPLAYED_HEADER, 'true');
  res.statusCode = stored.status;
  res.end(Buffer.from(stored.body));
}
