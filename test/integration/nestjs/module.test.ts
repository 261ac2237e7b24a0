// IdempotencyModule and the ways of applying its interceptor, in real Nest applications against
// the shared Redis: the executor it provides (made and closed by it, or handed to it), its async
// form, the interceptor on the whole application or on a controller, and where options are checked.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { Controller, Get, Inject, Injectable, Module, Patch, Post, Put, Res } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  IDEMPOTENT_EXECUTOR,
  IdempotencyInterceptor,
  IdempotencyModule,
  Idempotent,
} from '../../../src/adapters/nestjs/index.js';
import {
  ErrorCode,
  IdempotentExecutor,
  InvalidOptionError,
  isIdempotencyError,
} from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { post, problemType } from '../http/post.js';
import { keysUnder } from '../support.js';
import { PLATFORMS, type RunningApp, rootModule, startApp } from './app.js';

const redis = connect();
after(() => redis.quit());

@Injectable()
class Ledger {
  constructor(@Inject(IDEMPOTENT_EXECUTOR) readonly executor: IdempotentExecutor) {}
}

/** Routes with no decorator of ours: guarded, if at all, by an interceptor applied elsewhere. */
function plainController(counts: { post: number; get: number; patch: number }) {
  @Controller('things')
  class ThingsController {
    @Post()
    create() {
      return { created: ++counts.post };
    }

    @Patch()
    change() {
      return { changed: ++counts.patch };
    }

    @Get()
    list() {
      return { listed: ++counts.get };
    }
  }
  return ThingsController;
}

describe('IdempotencyModule', () => {
  let namespace = '';
  let apps: RunningApp[] = [];
  let executors: IdempotentExecutor[] = [];
  const start = async (...args: Parameters<typeof startApp>) => {
    const app = await startApp(...args);
    apps.push(app);
    return app;
  };

  beforeEach(() => {
    namespace = uniqueNamespace('nest-module');
    apps = [];
    executors = [];
  });
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(executors.map((executor) => executor.close()));
    await deleteNamespace(redis, namespace);
  });

  it('makes an executor from executor options, injects it as IDEMPOTENT_EXECUTOR, and closes it on app.close()', async () => {
    // Prepare
    const app = await start(
      'express',
      rootModule([IdempotencyModule.forRoot({ redis, namespace })], [], [Ledger]),
    );
    const { executor } = app.app.get(Ledger);

    // Act
    const value = await executor.run('charge-1', async () => 'charged');
    await app.close();
    const afterClose = await executor.run('charge-2', async () => 'charged').catch((e) => e);

    // Assess
    assert.equal(value, 'charged');
    assert.equal(app.app.get(IDEMPOTENT_EXECUTOR), executor);
    assert.deepEqual(await keysUnder(redis, namespace), [`${namespace}:{charge-1}`]);
    assert.ok(isIdempotencyError(afterClose));
    assert.equal(afterClose.code, ErrorCode.STORE_UNAVAILABLE);
  });

  it('uses an executor it is given and leaves it open after app.close()', async () => {
    // Prepare
    const executor = new IdempotentExecutor({ redis, namespace });
    executors.push(executor);
    const app = await start('express', rootModule([IdempotencyModule.forRoot({ executor })], []));

    // Act
    const injected = app.app.get(IDEMPOTENT_EXECUTOR);
    await app.close();
    const afterClose = await executor.run('charge-3', async () => 'still open');

    // Assess
    assert.equal(injected, executor);
    assert.equal(afterClose, 'still open');
  });

  it('takes its options from a factory given other providers (forRootAsync)', async () => {
    // Prepare: a configuration module, as ConfigModule provides one
    @Module({ providers: [{ provide: 'NAMESPACE', useValue: namespace }], exports: ['NAMESPACE'] })
    class ConfigModule {}
    const counts = { post: 0, get: 0, patch: 0 };
    const idempotency = IdempotencyModule.forRootAsync({
      imports: [ConfigModule],
      inject: ['NAMESPACE'],
      useFactory: async (configured: string) => ({
        redis,
        namespace: configured,
        defaults: { required: true },
      }),
    });
    const app = await start(
      'express',
      rootModule(
        [idempotency],
        [plainController(counts)],
        [{ provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor }],
      ),
    );

    // Act
    const withoutKey = await post(`${app.url}/things`, undefined);
    const withKey = await post(`${app.url}/things`, 'k-async');

    // Assess
    assert.equal(withoutKey.status, 400);
    assert.equal((await withoutKey.json()).type, problemType('missing-key'));
    assert.equal(withKey.status, 201);
    assert.equal((await keysUnder(redis, namespace)).length, 1);
    assert.equal(counts.post, 1);
  });

  for (const platform of PLATFORMS) {
    it(`applied to the whole application on ${platform}, guards POST and PATCH and lets GET through`, async () => {
      // Prepare
      const executor = new IdempotentExecutor({ redis, namespace });
      executors.push(executor);
      const counts = { post: 0, get: 0, patch: 0 };
      const app = await start(
        platform,
        rootModule(
          [IdempotencyModule.forRoot({ executor })],
          [plainController(counts)],
          [{ provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor }],
        ),
      );

      // Act
      const created = [
        await post(`${app.url}/things`, 'k-p'),
        await post(`${app.url}/things`, 'k-p'),
      ];
      const changed = [
        await post(`${app.url}/things`, 'k-c', {}, {}, 'PATCH'),
        await post(`${app.url}/things`, 'k-c', {}, {}, 'PATCH'),
      ];
      const listed = [
        await fetch(`${app.url}/things`, { headers: { 'idempotency-key': 'k-g' } }),
        await fetch(`${app.url}/things`, { headers: { 'idempotency-key': 'k-g' } }),
      ];

      // Assess
      assert.equal(created[1]?.headers.get('idempotent-replayed'), 'true');
      assert.equal(changed[1]?.headers.get('idempotent-replayed'), 'true');
      assert.equal(listed[1]?.headers.get('idempotent-replayed'), null);
      assert.deepEqual(await listed[1]?.json(), { listed: 2 });
      assert.deepEqual(counts, { post: 1, patch: 1, get: 2 });
    });

    it(`on a controller and on one of its methods on ${platform}, guards the route once and the controller's other routes by method`, async () => {
      // Prepare
      const executor = new IdempotentExecutor({ redis, namespace });
      executors.push(executor);
      const runs = { create: 0, put: 0 };
      @Controller('carts')
      @Idempotent()
      class CartsController {
        @Post()
        @Idempotent({ replayHeaders: ['x-cart'] })
        create() {
          return { cart: ++runs.create };
        }

        @Put()
        replace() {
          return { replaced: ++runs.put };
        }
      }
      const app = await start(
        platform,
        rootModule([IdempotencyModule.forRoot({ executor })], [CartsController]),
      );

      // Act
      const first = await post(`${app.url}/carts`, 'k-cart');
      const replay = await post(`${app.url}/carts`, 'k-cart');
      await post(`${app.url}/carts`, 'k-put', {}, {}, 'PUT');
      const put = await post(`${app.url}/carts`, 'k-put', {}, {}, 'PUT');

      // Assess
      assert.equal(first.status, 201);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(await replay.json(), { cart: 1 });
      assert.equal(put.headers.get('idempotent-replayed'), null);
      assert.deepEqual(runs, { create: 1, put: 2 });
    });
  }

  it('refuses, when the class is defined, to guard a handler that sends its own response (@Res())', () => {
    assert.throws(
      () => {
        @Controller()
        class PaymentsController {
          @Post('payments')
          @Idempotent()
          pay(@Res() response: { end(): void }) {
            response.end();
          }
        }
        return PaymentsController;
      },
      { message: /PaymentsController\.pay.*@Res\(\{ passthrough: true \}\)/s },
    );
    assert.doesNotThrow(() => {
      @Controller()
      class RefundsController {
        @Post('refunds')
        @Idempotent()
        refund(@Res({ passthrough: true }) _response: unknown) {
          return { refunded: true };
        }
      }
      return RefundsController;
    });
  });

  it('answers 500 to requests of a guarded method, key or not, on a route whose handler sends its own response, without running it', async () => {
    // Prepare
    const executor = new IdempotentExecutor({ redis, namespace });
    executors.push(executor);
    let runs = 0;
    @Controller()
    class ReceiptsController {
      @Post('receipts')
      send(@Res() response: { end(body: string): void }) {
        runs++;
        response.end('sent by the handler');
      }
    }
    const app = await start(
      'express',
      rootModule(
        [IdempotencyModule.forRoot({ executor })],
        [ReceiptsController],
        [{ provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor }],
      ),
    );

    // Act
    const withKey = await post(`${app.url}/receipts`, 'k-receipt');
    const withoutKey = await post(`${app.url}/receipts`, undefined);

    // Assess: the route is misconfigured for every client, not only for those sending a key
    assert.equal(withKey.status, 500);
    assert.equal(withoutKey.status, 500);
    assert.equal(runs, 0);
  });

  it('checks options where they are given, with InvalidOptionError naming the option', async () => {
    const executor = new IdempotentExecutor({ redis, namespace });
    executors.push(executor);
    const naming = (option: string) => (error: unknown) =>
      error instanceof InvalidOptionError && error.option === option;

    assert.throws(() => Idempotent({ waitTimeoutMs: 0 }), naming('waitTimeoutMs'));
    assert.throws(
      () => Idempotent({ scope: 'x-tenant' as unknown as () => string }),
      naming('scope'),
    );
    assert.throws(
      () => IdempotencyModule.forRoot({ executor, defaults: { headerName: 'Idempotency Key' } }),
      naming('headerName'),
    );
    assert.throws(
      () => IdempotencyModule.forRoot({ executor, namespace } as never),
      naming('namespace'),
    );
    assert.throws(
      () => IdempotencyModule.forRoot({ executor: {} as IdempotentExecutor }),
      naming('executor'),
    );
    // The executor's own options are checked by the executor, when the application starts.
    await assert.rejects(
      startApp('express', rootModule([IdempotencyModule.forRoot({ namespace })], [])),
      (error: unknown) =>
        error instanceof InvalidOptionError && /`redis` or `store`/.test(error.message),
    );
  });
});
