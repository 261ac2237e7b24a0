import type { IncomingHttpHeaders } from 'node:http';
import type { IdempotentExecutor } from '../../index.js';
import {
  type Decision,
  HttpIdempotency,
  type HttpIdempotencyOptions,
  incomingHeader,
  type ProducedResponse,
  pathOf,
  REPLAYED_HEADER,
} from './core.js';

/** The parts of a Fastify request the plugin reads (no runtime dependency on Fastify). */
export interface FastifyRequestLike {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body?: unknown;
  /** Fastify 4.21+: the matched route's options (`url` is the route pattern). */
  readonly routeOptions?: { readonly url?: string | undefined } | undefined;
}

/** The parts of a Fastify reply the plugin uses. */
export interface FastifyReplyLike {
  readonly statusCode: number;
  code(status: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  getHeaders(): Record<string, string | number | string[] | undefined>;
  send(payload?: unknown): FastifyReplyLike;
}

/** The parts of a Fastify instance the plugin uses. */
export interface FastifyInstanceLike {
  addHook(
    name: 'preHandler',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
  addHook(
    name: 'onError',
    hook: (request: FastifyRequestLike, reply: FastifyReplyLike, error: unknown) => Promise<void>,
  ): unknown;
  addHook(
    name: 'onSend',
    hook: (
      request: FastifyRequestLike,
      reply: FastifyReplyLike,
      payload: unknown,
    ) => Promise<unknown>,
  ): unknown;
}

/** Options of {@link idempotencyPlugin}. */
export interface FastifyIdempotencyOptions extends HttpIdempotencyOptions {
  readonly executor: IdempotentExecutor;
}

interface Pending {
  readonly deliver: (response: ProducedResponse) => void;
  readonly decided: Promise<Decision>;
  /** The handler threw or sent an error: what Fastify's error handler sends is not stored. */
  errored: boolean;
}

const pendingByRequest = new WeakMap<object, Pending>();

/**
 * Fastify 5 plugin (`app.register(idempotencyPlugin, { executor, ...options })`): guarded routes
 * run their handler at most once per `Idempotency-Key`. It uses hooks, not a route wrapper, so
 * Fastify's own serialisation, error handler and `onSend` hooks stay in charge: `preHandler`
 * claims the key (or replays and stops), `onError` notes that the handler failed, `onSend`
 * hands the serialised payload to the store (or, after an error, frees the key).
 * Registered with `skip-override`, it applies to the routes of the scope it is registered in.
 */
export const idempotencyPlugin = Object.assign(
  async function idempotencyPlugin(
    fastify: FastifyInstanceLike,
    options: FastifyIdempotencyOptions,
  ): Promise<void> {
    const http = new HttpIdempotency(options?.executor, options);

    fastify.addHook('preHandler', async (request, reply) => {
      let deliver!: (response: ProducedResponse) => void;
      const produced = new Promise<ProducedResponse>((resolve) => {
        deliver = resolve;
      });
      let runsHere!: () => void;
      const started = new Promise<'run'>((resolve) => {
        runsHere = () => resolve('run');
      });
      const decided = http.handle(
        {
          method: request.method,
          path: pathOf(request.url),
          route: request.routeOptions?.url,
          header: incomingHeader(request.headers),
          body: request.body,
        },
        () => {
          runsHere();
          return produced;
        },
      );
      const first = await Promise.race([started, decided.then(() => 'decided' as const)]);
      if (first === 'run') {
        pendingByRequest.set(request, { deliver, decided, errored: false });
        return; // on to the handler; onSend stores what it sends
      }
      const decision = await decided;
      if (decision.kind === 'pass') return;
      const { response, replayed } = decision;
      reply.code(response.status);
      for (const [name, value] of response.headers) reply.header(name, value);
      if (replayed) reply.header(REPLAYED_HEADER, 'true');
      return reply.send(Buffer.from(response.body));
    });

    fastify.addHook('onError', async (request) => {
      const pending = pendingByRequest.get(request);
      if (pending !== undefined) pending.errored = true;
    });

    fastify.addHook('onSend', async (request, reply, payload) => {
      const pending = pendingByRequest.get(request);
      if (pending === undefined) return payload;
      pendingByRequest.delete(request);
      const body =
        typeof payload === 'string'
          ? Buffer.from(payload)
          : payload instanceof Uint8Array
            ? Buffer.from(payload)
            : undefined;
      pending.deliver({
        status: body === undefined ? 500 : reply.statusCode, // a stream cannot be stored: treat as not storable
        headers: http.storedHeaders(Object.entries(reply.getHeaders())),
        body: body ?? Buffer.alloc(0),
        fromError: pending.errored,
      });
      // Send only once the record is stored, so a client that retries at once gets the replay.
      await pending.decided.catch(() => undefined);
      return payload;
    });
  },
  { [Symbol.for('skip-override')]: true },
);
