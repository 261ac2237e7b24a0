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
  return {
    status: 201,
    type: 'application/json',
    body: Buffer.from(JSON.stringify({ order: `ord_${runs}`, received: body })),
    headers: {
      location: `/orders/ord_${runs}`,
      'x-request-cost': '3',
      'set-cookie': `session=${runs}`,
    },
  };
}

export async function startOrderApi(frontEnd: FrontEnd, ctx: ApiContext): Promise<OrderApi> {
  if (frontEnd === 'fastify') {
    const app = Fastify();
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
    app.post('/orders', route);
    app.post('/files', route);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
  }
  let server: Server;
  if (frontEnd === 'express') {
    const app = express();
    app.use(express.json());
    app.use(express.raw({ type: 'application/octet-stream' }));
    app.use(idempotencyMiddleware(ctx.executor, ctx.options));
    app.post(['/orders', '/files'], async (req, res) => {
      const result = await answer(
        ctx,
        req.path,
        typeof req.query.fail === 'string' ? req.query.fail : null,
        req.body,
      );
      res.status(result.status).type(result.type);
      for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
      res.send(result.body);
    });
    server = createServer(app);
  } else {
    const handler = idempotentFetchHandler(
      ctx.executor,
      async (request) => {
        const url = new URL(request.url);
        const body = request.headers.get('content-type')?.includes('json')
          ? await request.json()
          : null;
        const result = await answer(ctx, url.pathname, url.searchParams.get('fail'), body);
        return new Response(result.body, {
          status: result.status,
          headers: { 'content-type': result.type, ...result.headers },
        });
      },
      ctx.options,
    );
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const response = await handler(
        new Request(`http://localhost${req.url}`, {
          method: req.method ?? 'GET',
          headers: req.headers as Record<string, string>,
          ...(req.method === 'GET' ? {} : { body: Buffer.concat(chunks) }),
        }),
      );
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
