// Per-test set-up shared by the HTTP suites: a fresh namespace, order APIs started on demand
// (each with its own executor), and everything closed and deleted after the test.
import { afterEach, beforeEach } from 'node:test';
import type { Redis } from 'ioredis';
import type { HttpIdempotencyOptions } from '../../../src/adapters/http/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { type FrontEnd, type OrderApi, startOrderApi } from './servers.js';

export interface OrderApis {
  /** Starts an order API; its handler takes `workMs` per run. Returns its base URL. */
  start(options?: HttpIdempotencyOptions, workMs?: number): Promise<string>;
  /** How many times the handler has run in this test (any process). */
  runs(): Promise<number>;
}

/** Registers the hooks of one suite of `frontEnd` tests against `redis`. */
export function useOrderApis(frontEnd: FrontEnd, redis: Redis): OrderApis {
  let namespace = '';
  let counterKey = '';
  let executors: IdempotentExecutor[] = [];
  let apis: OrderApi[] = [];

  beforeEach(() => {
    namespace = uniqueNamespace(`http-${frontEnd}`);
    counterKey = `${namespace}:handler-runs`;
    executors = [];
    apis = [];
  });
  afterEach(async () => {
    await Promise.all(apis.map((api) => api.close()));
    await Promise.all(executors.map((executor) => executor.close()));
    await deleteNamespace(redis, namespace);
  });

  return {
    async start(options = {}, workMs = 100) {
      const executor = new IdempotentExecutor({ redis, namespace });
      executors.push(executor);
      const api = await startOrderApi(frontEnd, { redis, executor, counterKey, options, workMs });
      apis.push(api);
      return api.url;
    },
    async runs() {
      return Number((await redis.get(counterKey)) ?? 0);
    },
  };
}

export const FRONT_ENDS = ['fetch', 'express', 'fastify'] as const satisfies readonly FrontEnd[];

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
