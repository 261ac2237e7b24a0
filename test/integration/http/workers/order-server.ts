// An order API server process: pushes its URL, serves until the test stops it.
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../../../src/index.js';
import { emit, serve, workerConfig } from '../../../helpers/worker/child.js';
import { type FrontEnd, startOrderApi } from '../servers.js';

export interface OrderServerConfig {
  readonly frontEnd: FrontEnd;
  readonly namespace: string;
  /** The Redis key the order handler INCRs on every run. */
  readonly counterKey: string;
}

export interface ListeningEvent {
  readonly event: 'listening';
  readonly url: string;
}

const { frontEnd, namespace, counterKey } = workerConfig<OrderServerConfig>();
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace });
const api = await startOrderApi(frontEnd, { redis, executor, counterKey, workMs: 300 });
emit({ event: 'listening', url: api.url } satisfies ListeningEvent);
serve(
  {},
  {
    shutdown: async () => {
      await api.close();
      await executor.close();
      redis.disconnect();
    },
  },
);
