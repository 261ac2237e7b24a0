// A small order API as a real Nest application, on the Express or the Fastify platform, listening
// on loopback. Routes are guarded by @Idempotent(); each handler counts its runs.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  Body,
  ConflictException,
  Controller,
  type DynamicModule,
  Header,
  HttpCode,
  type INestApplication,
  Module,
  Param,
  Post,
  type Provider,
  Put,
  Res,
  StreamableFile,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { type Observable, timer } from 'rxjs';
import { map } from 'rxjs/operators';
import { Idempotent } from '../../../src/adapters/nestjs/index.js';

export type Platform = 'express' | 'fastify';
export const PLATFORMS = ['express', 'fastify'] as const satisfies readonly Platform[];

/** What the handlers share with the test: their runs and how long each takes. */
export interface Handlers {
  runs: number;
  workMs: number;
}

export interface RunningApp {
  readonly app: INestApplication;
  readonly url: string;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sets a response header on either platform's response object (Express res, Fastify reply). */
function setHeader(response: unknown, name: string, value: string): void {
  const reply = response as { header?: (n: string, v: string) => unknown; raw?: unknown };
  if (reply.raw !== undefined && typeof reply.header === 'function') reply.header(name, value);
  else (response as { setHeader(n: string, v: string): void }).setHeader(name, value);
}

/** The controller, over `handlers` (made per app, so that each test counts its own runs). */
export function ordersController(handlers: Handlers) {
  @Controller()
  class OrdersController {
    @Post('orders')
    @Idempotent({ replayHeaders: ['x-order-region'] })
    @Header('X-Served-By', 'nest')
    async create(@Body() body: unknown, @Res({ passthrough: true }) response: unknown) {
      const id = ++handlers.runs;
      await sleep(handlers.workMs);
      setHeader(response, 'Location', `/orders/${id}`);
      setHeader(response, 'X-Order-Region', 'eu');
      setHeader(response, 'Set-Cookie', `session=${id}`);
      return { id, order: `ord_${id}`, body };
    }

    @Post('orders/:id/items')
    @Idempotent()
    async addItem(@Param('id') id: string, @Body() body: unknown) {
      handlers.runs++;
      await sleep(handlers.workMs);
      return { order: id, item: body };
    }

    @Put('orders/:id')
    @Idempotent()
    @HttpCode(202)
    async replace(@Param('id') id: string) {
      handlers.runs++;
      return `accepted ${id}`;
    }

    @Post('strict')
    @Idempotent({ required: true, wait: false })
    async strict() {
      handlers.runs++;
      await sleep(handlers.workMs);
      return { ok: true };
    }

    @Post('conflicts')
    @Idempotent()
    async conflict() {
      handlers.runs++;
      await sleep(handlers.workMs);
      throw new ConflictException('Order already being changed');
    }

    @Post('failures')
    @Idempotent()
    async failure() {
      handlers.runs++;
      throw new Error('the payment provider is down');
    }

    @Post('files')
    @Idempotent()
    async file() {
      const run = ++handlers.runs;
      const chunks = [Buffer.from([0, 255]), Buffer.from([1, 254, run])];
      return new StreamableFile(Readable.from(chunks), { type: 'application/x-receipt' });
    }

    @Post('streams')
    @Idempotent()
    observe(): Observable<{ id: number }> {
      return timer(handlers.workMs).pipe(map(() => ({ id: ++handlers.runs })));
    }
  }
  return OrdersController;
}

/** Starts `root` on `platform`, on a free loopback port, without Nest's logs. */
export async function startApp(platform: Platform, root: Type): Promise<RunningApp> {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  // abortOnError: false, so that a module that fails to start rejects instead of ending the process
  const app = await NestFactory.create(root, adapter, { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** A root module of `imports`, `controllers` and `providers`. */
export function rootModule(
  imports: DynamicModule[],
  controllers: Type[],
  providers: Provider[] = [],
): Type {
  @Module({ imports, controllers, providers })
  class AppModule {}
  return AppModule;
}
