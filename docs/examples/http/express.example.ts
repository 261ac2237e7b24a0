// An order API with Express 5: a client retrying POST /orders with the same Idempotency-Key
// creates one order and gets the same 201 (and Location) every time, even when its first
// attempt timed out while the order was being created.
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
    // One key space per client. Header names are case-insensitive; a request without the
    // header gets 500 problem+json naming `scope` instead of sharing a scope with others.
    scope: (request) => request.header('X-Api-Key'),
  }),
);
app.post('/orders', async (req, res) => {
  created++;
  await new Promise((resolve) => setTimeout(resolve, 300)); // the payment provider is slow
  res
    .status(201)
    .location(`/orders/${created}`)
    .json({ id: created, ...req.body });
});

const server = createServer(app);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const order = (path = '/orders', signal?: AbortSignal) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': 'client-1',
      'idempotency-key': 'order-7f3a',
    },
    body: JSON.stringify({ item: 'book' }),
    ...(signal === undefined ? {} : { signal }),
  });

// The client gives up after 100 ms; the order is still being created on the server.
await assert.rejects(order('/orders', AbortSignal.timeout(100)));
const retry = await order(); // waits for the running request, then gets its response
const again = await order(); // replayed from the record
const elsewhere = await order('/refunds'); // the same key on another path

assert.equal(retry.status, 201);
assert.equal(retry.headers.get('location'), '/orders/1');
assert.equal(again.headers.get('idempotent-replayed'), 'true');
assert.deepEqual(await again.json(), await retry.json());
assert.equal(elsewhere.status, 422);
assert.equal(created, 1);
console.log('one order created; the timed-out attempt, the retry and the replay share it');

server.close();
await executor.close();
await redis.quit();
