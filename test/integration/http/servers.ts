// The same small order API behind each front end, on a real loopback server. The handler counts
// its runs in Redis so that runs in several processes add up.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import type { Redis } from 'ioredis';
import {
  type HttpIdempotencyOptions,
  idempotencyMiddleware,
  idempotencyPlugin,
  idempotentFetchHandler,
} from '../../../src/adapters/http/index.js';
import type { IdempotentExecutor } from '../../../src/index.js';

export type FrontEnd = 'fetch' | 'express' | 'fastify';

export interface OrderApi {
  readonly url: string;
  close(): Promise<void>;
}

export interface ApiContext {
  readonly redis: Redis;
  readonly executor: IdempotentExecutor;
  readonly counterKey: string;
  readonly options?: HttpIdempotencyOptions;
  /** How long each handler run takes, ms. */
  readonly workMs?: number;
}

/** The size of the `/big` response: over the executor's default `maxRecordBytes` (1 MiB). */
export const BIG_RESPONSE_BYTES = 1.5 * 1024 * 1024;

/**
 * An http-errors style error (`status`, `statusCode`, `expose`), as `createError(409)` makes: the
 * frameworks answer it with its status.
 */
export function conflictError(): Error {
  return Object.assign(new Error('Order already being changed'), {
    status: 409,
    statusCode: 409,
    expose: true,
  });
}

/** How a `/conflicts` handler fails (`?mode=`): throws at once, rejects, or calls `next(err)`. */
export type FailMode = 'sync' | 'async' | 'next' | 'send';

/** What the handler answers, from the request: the route and the `fail` query parameter. */
async function answer(ctx: ApiContext, path: string, fail: string | null, body: unknown) {
  const runs = await ctx.redis.incr(ctx.counterKey);
  await new Promise((resolve) => setTimeout(resolve, ctx.workMs ?? 100));
  if (fail !== null && runs <= Number(fail)) {
    return {
      status: 503,
      type: 'application/json',
      body: Buffer.from('{"error":"try again"}'),
      headers: {},
    };
  }
  if (path === '/files') {
    return {
      status: 201,
      type: 'application/octet-stream',
      body: Buffer.from([0, 255, 1, 254, runs]),
      headers: {},
    };
  }
  if (path === '/big') {
    return {
      status: 201,
      type: 'application/octet-stream',
      body: Buffer.alloc(BIG_RESPONSE_BYTES, runs),
      headers: {},
    };
  }
  if (path === '/v1/customers') {
    // What a Stripe SDK expects back from `customers.create`.
    return {
      status: 200,
      type: 'application/json',
      body: Buffer.from(JSON.stringify({ id: `cus_${runs}`, object: 'customer' })),
      headers: {},
    };
  }
  return {
    status: 201,
    type: 'application/json',
    body: Buffer.from(JSON.stringify({ order: `ord_${runs}`, path, received: body })),
    headers: {
      location: `/orders/ord_${runs}`,
      'x-request-cost': '3',
      'set-cookie': `session=${runs}`,
    },
  };
}

/** Counts a run of a failing handler without waiting for Redis (so a sync throw stays sync). */
function countRun(ctx: ApiContext): void {
  void ctx.redis.incr(ctx.counterKey);
}

const ROUTES = ['/orders', '/files', '/big', '/v1/customers', '/orders/:id/items'];

export async function startOrderApi(frontEnd: FrontEnd, ctx: ApiContext): Promise<OrderApi> {
  if (frontEnd === 'fastify') {
    const app = Fastify({ maxParamLength: 2048 }); // long order ids in paths
    await app.register(idempotencyPlugin, { executor: ctx.executor, ...ctx.options });
    const route = async (
      request: { url: string; body: unknown; query: unknown },
      reply: {
        code(n: number): unknown;
        header(n: string, v: string): unknown;
        send(b: unknown): unknown;
      },
    ) => {
      const url = new URL(request.url, 'http://x');
      const result = await answer(ctx, url.pathname, url.searchParams.get('fail'), request.body);
      reply.code(result.status);
      reply.header('content-type', result.type);
      for (const [name, value] of Object.entries(result.headers)) reply.header(name, value);
      return reply.send(result.body);
    };
    app.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer' },
      (_req, body, done) => done(null, body),
    );
    // Stripe SDKs send forms.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );
    for (const path of ROUTES) {
      app.post(path, route);
      app.patch(path, route);
    }
    app.post('/conflicts', (request, reply) => {
      countRun(ctx);
      const mode = (request.query as { mode?: FailMode }).mode;
      if (mode === 'sync') throw conflictError();
      if (mode === 'send') return reply.send(conflictError());
      return Promise.reject(conflictError());
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  }
  let server: Server;
  if (frontEnd === 'express') {
    const app = express();
    app.set('env', 'test'); // the final handler answers errors without logging them
    app.use(express.json());
    app.use(express.urlencoded());
    app.use(express.raw({ type: 'application/octet-stream' }));
    app.use(idempotencyMiddleware(ctx.executor, ctx.options));
    app.post('/conflicts', (req, _res, next) => {
      countRun(ctx);
      const mode = req.query.mode as FailMode;
      if (mode === 'sync') throw conflictError();
      if (mode === 'next') return next(conflictError());
      return Promise.reject(conflictError());
    });
    const route = async (req: express.Request, res: express.Response) => {
      const result = await answer(
        ctx,
        req.path,
        typeof req.query.fail === 'string' ? req.query.fail : null,
        req.body,
      );
      res.status(result.status).type(result.type);
      for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
      res.send(result.body);
    };
    app.post(ROUTES, route);
    app.patch(ROUTES, route);
    server = createServer(app);
  } else {
    const handler = idempotentFetchHandler(
      ctx.executor,
      async (request) => {
        const url = new URL(request.url);
        if (url.pathname === '/conflicts') {
          countRun(ctx);
          if (url.searchParams.get('mode') === 'sync') throw conflictError();
          await Promise.resolve();
          throw conflictError();
        }
        const type = request.headers.get('content-type') ?? '';
        const body = type.includes('json')
          ? await request.json()
          : type.includes('form')
            ? Object.fromEntries(new URLSearchParams(await request.text()))
            : null;
        const result = await answer(ctx, url.pathname, url.searchParams.get('fail'), body);
        return new Response(result.body, {
          status: result.status,
          headers: { 'content-type': result.type, ...result.headers },
        });
      },
      ctx.options,
    );
    // A node:http server adapting Request/Response as Fetch-capable servers do (the request's
    // signal aborts when the client goes away; a thrown error with a status is answered with it).
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const gone = new AbortController();
      res.once('close', () => {
        if (!res.writableFinished) gone.abort();
      });
      let response: Response;
      try {
        response = await handler(
          new Request(`http://localhost${req.url}`, {
            method: req.method ?? 'GET',
            headers: req.headers as Record<string, string>,
            signal: gone.signal,
            ...(req.method === 'GET' ? {} : { body: Buffer.concat(chunks) }),
          }),
        );
      } catch (error) {
        const status = (error as { status?: unknown }).status;
        response = new Response((error as Error).message, {
          status: typeof status === 'number' ? status : 500,
        });
      }
      const headers: [string, string][] = [];
      response.headers.forEach((value, name) => {
        headers.push([name, value]);
      });
      res.writeHead(response.status, headers.flat());
      res.end(Buffer.from(await response.arrayBuffer()));
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
