// An order API with Express 5: a client retrying POST /orders with the same Idempotency-Key
// creates one order and gets the same 201 (and Location) every time.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { IdempotentExecutor } from 'idempotent-executor';
import { idempotencyMiddleware } from 'idempotent-executor/http';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace: `example-http-${process.pid}` });

let created = 0;
const app = express();
app.use(express.json());
app.use(
  idempotencyMiddleware(executor, {
    required: true,
    scope: (request) => request.header('x-api-key') ?? '', // one key space per client
  }),
);
app.post('/orders', (req, res) => {
  created++;
  res
    .status(201)
    .location(`/orders/${created}`)
    .json({ id: created, ...req.body });
});

const server = createServer(app);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`;
const order = () =>
  fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': 'client-1',
      'idempotency-key': 'order-7f3a',
    },
    body: JSON.stringify({ item: 'book' }),
  });

const first = await order();
const retry = await order();

assert.equal(first.status, 201);
assert.equal(retry.status, 201);
assert.equal(retry.headers.get('idempotent-replayed'), 'true');
assert.equal(retry.headers.get('location'), '/orders/1');
assert.deepEqual(await retry.json(), await first.json());
assert.equal(created, 1);
console.log('one order created; the retry was replayed');

server.close();
await executor.close();
await redis.quit();
