// Per-test set-up of the Nest suites: a fresh namespace, Nest applications started on demand
// (each with its own executor on the shared Redis), and everything closed and deleted after.
import { afterEach, beforeEach } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotencyModule, type IdempotentOptions } from '../../../src/adapters/nestjs/index.js';
import { type ExecutorOptions, IdempotentExecutor } from '../../../src/index.js';
import { deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import {
  type Handlers,
  ordersController,
  type Platform,
  type RunningApp,
  rootModule,
  startApp,
} from './app.js';

export interface StartedApi {
  readonly url: string;
  readonly handlers: Handlers;
}

export interface NestApps {
  /** The namespace of this test's records. */
  readonly namespace: string;
  /**
   * Starts the order API with its own executor (on the shared Redis unless `executorOptions`
   * say otherwise); `handlers` may be shared by several apps to count their runs together.
   */
  start(options?: {
    readonly defaults?: IdempotentOptions;
    readonly handlers?: Handlers;
    readonly executorOptions?: ExecutorOptions;
  }): Promise<StartedApi>;
  /** Closes `app` after the test. */
  track(app: RunningApp): RunningApp;
}

/** Registers the hooks of one suite of `platform` tests against `redis`. */
export function useNestApps(platform: Platform, redis: Redis): NestApps {
  let namespace = '';
  let executors: IdempotentExecutor[] = [];
  let apps: RunningApp[] = [];

  beforeEach(() => {
    namespace = uniqueNamespace(`nest-${platform}`);
    executors = [];
    apps = [];
  });
  afterEach(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(executors.map((executor) => executor.close()));
    await deleteNamespace(redis, namespace);
  });

  return {
    get namespace() {
      return namespace;
    },
    async start({ defaults, handlers = { runs: 0, workMs: 50 }, executorOptions } = {}) {
      const executor = new IdempotentExecutor(executorOptions ?? { redis, namespace });
      executors.push(executor);
      const module = IdempotencyModule.forRoot({
        executor,
        ...(defaults === undefined ? {} : { defaults }),
      });
      const app = await startApp(platform, rootModule([module], [ordersController(handlers)]));
      apps.push(app);
      return { url: app.url, handlers };
    },
    track(app) {
      apps.push(app);
      return app;
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
