// OpenTelemetry: the spans and metrics of runs against the real Redis, read from the SDK's
// in-memory exporters (registered here as an application registers the SDK).
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Redis } from 'ioredis';
import { idempotentFetchHandler } from '../../../src/adapters/http/index.js';
import { MessageGuard } from '../../../src/adapters/jobs/index.js';
import { WebhookGuard } from '../../../src/adapters/webhooks/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../../helpers/redis.js';
import { stopAllWorkers } from '../../helpers/worker/parent.js';
import { gate, rejectionOf, sleep, waitForWaiters } from '../support.js';
import { ExecutorProcess } from '../workers/executor-process.js';
import { histogram, keepTree, type Otel, registerOtel, total, treeOf } from './otel.js';

const tracer = trace.getTracer('telemetry-test');

describe('OpenTelemetry traces and metrics', () => {
  let otel: Otel;
  let redis: Redis;
  let namespace: string;
  let executors: IdempotentExecutor[];

  const executor = (options: { leaseMs?: number } = {}) => {
    const created = new IdempotentExecutor({ redis, namespace, ...options });
    executors.push(created);
    return created;
  };
  const runSpans = (): ReadableSpan[] =>
    otel.spans
      .getFinishedSpans()
      .filter(
        (span) =>
          span.name === 'idempotency.run' && span.attributes['idempotency.namespace'] === namespace,
      );
  const childrenOf = (parent: ReadableSpan) =>
    otel.spans
      .getFinishedSpans()
      .filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId);
  const eventNames = (span: ReadableSpan) => span.events.map((event) => event.name);

  before(() => {
    otel = registerOtel();
  });
  after(async () => {
    await otel.shutdown();
  });
  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('otel');
    executors = [];
    otel.spans.reset();
  });
  afterEach(async () => {
    await stopAllWorkers();
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it("gives the winner's run a span with outcome executed, child of the caller's span and parent of fn's spans", async () => {
    // Prepare
    const winner = executor();

    // Act
    const value = await tracer.startActiveSpan('POST /orders', async (request) => {
      try {
        return await winner.run('order-1', () =>
          tracer.startActiveSpan('charge', async (charge) => {
            await sleep(5);
            charge.end();
            return 'receipt-1';
          }),
        );
      } finally {
        request.end();
      }
    });

    // Assess
    assert.equal(value, 'receipt-1');
    const [run] = runSpans();
    assert.ok(run);
    assert.equal(run.attributes['idempotency.outcome'], 'executed');
    assert.equal(run.attributes['idempotency.key'], 'order-1');
    assert.equal(run.attributes['idempotency.result'], 'ok');
    const request = otel.spans.getFinishedSpans().find((span) => span.name === 'POST /orders');
    assert.equal(run.parentSpanContext?.spanId, request?.spanContext().spanId);
    const children = childrenOf(run);
    assert.deepEqual(
      children.map((span) => span.name),
      ['charge'],
    );
    assert.equal(children[0]?.spanContext().traceId, run.spanContext().traceId);
    if (request !== undefined) keepTree('A winner', treeOf(otel.spans.getFinishedSpans(), request));
  });

  it('shows a waiter in another executor as waited, a same-process duplicate as joined and a later caller as replayed', async () => {
    // Prepare
    const owner = executor();
    const other = executor();
    const release = gate();
    const started = gate();
    const owning = owner.run('order-2', async () => {
      started.open();
      await release.promise;
      return 'A';
    });
    await started.promise;
    const joining = owner.run('order-2', () => 'never runs');
    const waiting = tracer.startActiveSpan('retry of POST /orders', async (span) => {
      try {
        return await other.run('order-2', () => 'never runs');
      } finally {
        span.end();
      }
    });
    await waitForWaiters(redis, namespace, 1);

    // Act
    await sleep(20);
    release.open();
    const values = await Promise.all([owning, joining, waiting]);
    const later = await other.run('order-2', () => 'never runs');

    // Assess
    assert.deepEqual([...values, later], ['A', 'A', 'A', 'A']);
    const outcomes = runSpans()
      .map((span) => span.attributes['idempotency.outcome'])
      .sort();
    assert.deepEqual(outcomes, ['executed', 'joined', 'replayed', 'waited']);
    const waiter = runSpans().find((span) => span.attributes['idempotency.outcome'] === 'waited');
    assert.ok(waiter);
    assert.deepEqual(eventNames(waiter), ['idempotency.wait.started']);
    const root = otel.spans
      .getFinishedSpans()
      .find((span) => span.name === 'retry of POST /orders');
    if (root !== undefined) keepTree('A waiter', treeOf(otel.spans.getFinishedSpans(), root));
  });

  it("shows a takeover, with fn's span under it, after the owner's process is SIGKILLed mid-fn", async () => {
    // Prepare
    const [owner] = await ExecutorProcess.startMany(1, {
      redisUrl: REDIS_URL,
      counterUrl: REDIS_URL,
      namespace,
      leaseMs: 1_000,
    });
    assert.ok(owner);
    const owning = owner.run({
      key: 'order-3',
      fn: {
        counterKey: `${namespace}:runs`,
        sleepMs: 60_000,
        result: { kind: 'value', value: 'A' },
      },
    });
    await owner.event('started', owning);
    const successor = executor({ leaseMs: 1_000 });
    const succeeding = tracer.startActiveSpan('redelivered job', async (span) => {
      try {
        return await successor.run('order-3', () =>
          tracer.startActiveSpan('charge', async (charge) => {
            charge.end();
            return 'B';
          }),
        );
      } finally {
        span.end();
      }
    });
    await waitForWaiters(redis, namespace, 1);

    // Act
    await owner.kill();
    const value = await succeeding;

    // Assess
    assert.equal(value, 'B');
    const [run] = runSpans();
    assert.ok(run);
    assert.equal(run.attributes['idempotency.outcome'], 'taken_over');
    assert.deepEqual(eventNames(run), ['idempotency.wait.started', 'idempotency.lease.expired']);
    assert.deepEqual(
      childrenOf(run).map((span) => span.name),
      ['charge'],
    );
    const takeovers = await otel.points('idempotency.wait.duration', {
      'idempotency.namespace': namespace,
      'idempotency.outcome': 'taken_over',
    });
    assert.equal(histogram(takeovers).count, 1);
    const root = otel.spans.getFinishedSpans().find((span) => span.name === 'redelivered job');
    if (root !== undefined) keepTree('A takeover', treeOf(otel.spans.getFinishedSpans(), root));
  });

  it('records lease renewals as span events while fn outlives its lease', async () => {
    // Prepare
    const owner = executor({ leaseMs: 150 });

    // Act
    await owner.run('slow', () => sleep(400));

    // Assess
    const [run] = runSpans();
    assert.ok(run);
    const renewals = eventNames(run).filter((name) => name === 'idempotency.lease.renewed');
    assert.ok(renewals.length >= 2, `${renewals.length} renewals`);
    keepTree('Lease renewals', treeOf(otel.spans.getFinishedSpans(), run));
  });

  it('records a lost lease as a span event, a LEASE_LOST error code and a lease-loss count', async () => {
    // Prepare
    const owner = executor({ leaseMs: 150 });

    // Act: the event loop stalls past the lease; the completion is refused.
    const error = await rejectionOf(
      owner.run('stalled', () => {
        const until = Date.now() + 500;
        while (Date.now() < until) {
          // busy: no renewal can go out
        }
        return 'late';
      }),
    );

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_LEASE_LOST');
    const [run] = runSpans();
    assert.ok(run);
    assert.equal(run.attributes['idempotency.error.code'], 'IDEMPOTENCY_LEASE_LOST');
    assert.equal(run.attributes['idempotency.outcome'], 'executed');
    assert.equal(run.status.code, 2);
    const lost = run.events.filter((event) => event.name === 'idempotency.lease.lost');
    assert.ok(lost.length >= 1);
    const losses = await otel.points('idempotency.lease.losses', {
      'idempotency.namespace': namespace,
    });
    assert.equal(total(losses), 1);
    keepTree('A lost lease', treeOf(otel.spans.getFinishedSpans(), run));
  });

  it('counts executions, replays, waits and joins and records fn and wait durations over a storm', async () => {
    // Prepare: 20 keys, each called 3 times at once on each of two executors (two "processes").
    const left = executor();
    const right = executor();
    const keys = Array.from({ length: 20 }, (_, i) => `storm-${i}`);
    const fn = async () => {
      await sleep(30);
      return 'done';
    };

    // Act
    await Promise.all(
      keys.flatMap((key) =>
        [left, right].flatMap((side) => [1, 2, 3].map(() => side.run(key, fn))),
      ),
    );
    await Promise.all(keys.map((key) => left.run(key, fn)));

    // Assess
    const where = { 'idempotency.namespace': namespace };
    const points = (name: string, extra: Record<string, string> = {}) =>
      otel.points(name, { ...where, ...extra });
    const executions = total(await points('idempotency.executions'));
    const immediate = total(
      await points('idempotency.replays', { 'idempotency.outcome': 'replayed' }),
    );
    const afterWaiting = total(
      await points('idempotency.replays', { 'idempotency.outcome': 'waited' }),
    );
    const waits = total(await points('idempotency.waits'));
    const joins = total(await points('idempotency.joins'));
    const fnDuration = histogram(await points('idempotency.fn.duration'));
    const waitDuration = histogram(await points('idempotency.wait.duration'));
    const figures = { executions, immediate, afterWaiting, waits, joins, fnDuration, waitDuration };
    keepTree('Storm metrics', JSON.stringify(figures, null, 2));
    assert.equal(executions, 20);
    // One flight per key on the losing executor, plus the 20 later calls.
    assert.equal(immediate + afterWaiting, 40);
    assert.ok(immediate >= 20);
    assert.equal(waits, afterWaiting);
    assert.equal(joins, 20 * 2 * 2);
    assert.equal(fnDuration.count, 20);
    assert.ok(fnDuration.sum >= 20 * 0.025, `fn duration sum ${fnDuration.sum}`);
    assert.equal(waitDuration.count, afterWaiting);
  });

  it('puts the HTTP semantic-convention attributes on the run span of a guarded request', async () => {
    // Prepare
    const handler = idempotentFetchHandler(executor(), () => new Response('{}', { status: 201 }));
    const request = () =>
      new Request('http://shop.test/orders', {
        method: 'POST',
        headers: { 'idempotency-key': 'k-1', 'content-type': 'application/json' },
        body: '{"sku":"a"}',
      });

    // Act
    await handler(request());
    await handler(request());

    // Assess
    const spans = runSpans();
    assert.equal(spans.length, 2);
    for (const span of spans) {
      assert.equal(span.attributes['http.request.method'], 'POST');
      assert.equal(span.attributes['url.path'], '/orders');
      assert.equal(span.attributes['http.response.status_code'], 201);
    }
    assert.deepEqual(spans.map((span) => span.attributes['idempotency.outcome']).sort(), [
      'executed',
      'replayed',
    ]);
  });

  it('puts the webhook source and event id, and the message id, on the run spans', async () => {
    // Prepare
    const shared = executor();
    const webhooks = new WebhookGuard(shared, { source: 'stripe', verify: false });
    const messages = new MessageGuard(shared, { scope: 'orders-consumer' });

    // Act
    await webhooks.process('evt_1', () => 'handled');
    await messages.run('msg-1', () => 'sent');

    // Assess
    const spans = runSpans();
    const webhook = spans.find((span) => span.attributes['cloudevents.event_id'] === 'evt_1');
    assert.equal(webhook?.attributes['cloudevents.event_source'], 'stripe');
    const message = spans.find((span) => span.attributes['messaging.message.id'] === 'msg-1');
    assert.equal(message?.attributes['messaging.operation.type'], 'process');
  });
});
