import type { IdempotentExecutor } from '../../index.js';
import { HttpIdempotency, type HttpIdempotencyOptions, REPLAYED_HEADER } from './core.js';

/** Options of {@link idempotentFetchHandler}. */
export interface FetchIdempotencyOptions extends HttpIdempotencyOptions {}

/**
 * Wraps a Fetch API handler (`(request) => Promise<Response>`: Hono, Next.js route handlers,
 * Bun, Deno) so that requests with an `Idempotency-Key` run it at most once per key.
 */
export function idempotentFetchHandler(
  executor: IdempotentExecutor,
  handler: (request: Request) => Response | Promise<Response>,
  options: FetchIdempotencyOptions = {},
): (request: Request) => Promise<Response> {
  const http = new HttpIdempotency(executor, options);
  return async (request) => {
    if (!http.guards(request.method)) return handler(request);
    const body = new Uint8Array(await request.clone().arrayBuffer());
    // The caller whose request ran gets every header the handler set; replays get the stored ones.
    let originalHeaders: Headers | undefined;
    const decision = await http.handle(
      {
        method: request.method,
        path: new URL(request.url).pathname,
        header: (name) => request.headers.get(name) ?? undefined,
        body,
      },
      async () => {
        // A handler that throws stores nothing: its error reaches the caller, the key is freed.
        const response = await handler(request);
        originalHeaders = response.headers;
        const headers: [string, string][] = [];
        response.headers.forEach((value, name) => {
          headers.push([name, value]);
        });
        return {
          status: response.status,
          headers: http.storedHeaders(headers),
          body: new Uint8Array(await response.arrayBuffer()),
        };
      },
    );
    if (decision.kind === 'pass') return handler(request);
    const { response, replayed } = decision;
    const headers = new Headers();
    if (!replayed && originalHeaders !== undefined) {
      originalHeaders.forEach((value, name) => {
        headers.append(name, value);
      });
    } else {
      for (const [name, value] of response.headers) headers.append(name, value);
    }
    if (replayed) headers.set(REPLAYED_HEADER, 'true');
    const noBody = response.status === 204 || response.status === 304;
    return new Response(noBody ? null : Buffer.from(response.body), {
      status: response.status,
      headers,
    });
  };
}
