// An order API in NestJS, on the Express and the Fastify platform: a client retrying
// POST /orders with the same Idempotency-Key creates one order and gets the same 201 (and
// Location) every time, even when its first attempt timed out while the order was being created.
// A declined card (an HttpException) is Nest's answer, never stored: the retry runs again.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Body, Controller, HttpException, Module, Post, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { IdempotencyModule, Idempotent } from 'idempotent-executor/nestjs';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
let created = 0;
let declined = 0;

@Controller()
class OrdersController {
  @Post('orders')
  @Idempotent()
  async create(
    @Body() body: { item: string },
    @Res({ passthrough: true }) res: { header(name: string, value: string): unknown },
  ) {
    created++;
    await new Promise((resolve) => setTimeout(resolve, 300)); // the payment provider is slow
    res.header('Location', `/orders/${created}`); // Express and Fastify both have header()
    return { id: created, ...body };
  }

  @Post('payments')
  @Idempotent()
  pay() {
    declined++;
    throw new HttpException('Card declined', 402);
  }
}

@Module({
  imports: [
    IdempotencyModule.forRoot({
      redis, // the module makes the executor, and closes it with the application
      namespace: `example-nestjs-${process.pid}`,
      defaults: {
        required: true,
        // One key space per client (header names in any case). A request without the header
        // gets 500 problem+json naming `scope` instead of sharing a scope with others.
        scope: (request) => request.header('X-Api-Key'),
      },
    }),
  ],
  controllers: [OrdersController],
})
class AppModule {}

for (const adapter of [new ExpressAdapter(), new FastifyAdapter()]) {
  created = 0;
  declined = 0;
  const app = await NestFactory.create(AppModule, adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const key = `order-7f3a-${adapter.constructor.name}`;
  const send = (path: string, signal?: AbortSignal) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'client-1',
        'idempotency-key': key,
      },
      body: JSON.stringify({ item: 'book' }),
      ...(signal === undefined ? {} : { signal }),
    });

  // The client gives up after 100 ms; the order is still being created on the server.
  await assert.rejects(send('/orders', AbortSignal.timeout(100)));
  const retry = await send('/orders'); // waits for the running request, then gets its response
  const again = await send('/orders'); // replayed from the record
  const elsewhere = await send('/payments'); // the same key on another path

  assert.equal(retry.status, 201);
  assert.equal(retry.headers.get('location'), '/orders/1');
  assert.equal(again.status, 201);
  assert.equal(again.headers.get('location'), '/orders/1');
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(await again.json(), await retry.json());
  assert.equal(elsewhere.status, 422);
  assert.equal(created, 1);

  // A thrown HttpException is sent as Nest sends it, and not stored: the retry runs again.
  const payKey = {
    'content-type': 'application/json',
    'x-api-key': 'client-1',
    'idempotency-key': `pay-${key}`,
  };
  const first = await fetch(`${url}/payments`, { method: 'POST', headers: payKey, body: '{}' });
  const second = await fetch(`${url}/payments`, { method: 'POST', headers: payKey, body: '{}' });
  assert.equal(first.status, 402);
  assert.equal(second.status, 402);
  assert.equal(second.headers.get('idempotent-replayed'), null);
  assert.equal(declined, 2);

  console.log(
    `${adapter.constructor.name}: one order for the timed-out attempt, the retry and the replay; the declined payment ran twice`,
  );
  await app.close(); // closes the executor the module made
}

await redis.quit();
