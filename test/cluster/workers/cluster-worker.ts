// A process calling IdempotentExecutor on a Redis Cluster on request, started by the cluster
// tests through ClusterProcess; see protocol.ts for what it answers and pushes.
import { Cluster } from 'ioredis';
import { IdempotentExecutor } from '../../../src/index.js';
import { emit, gate, serve, workerConfig } from '../../helpers/worker/child.js';
import type {
  ClusterRequests,
  ClusterWorkerConfig,
  ExecutionValue,
  StartedEvent,
} from './protocol.js';

const config = workerConfig<ClusterWorkerConfig>();
const push: (event: StartedEvent) => void = emit;

const client = new Cluster([{ host: '127.0.0.1', port: config.port }]);
client.on('error', () => {});
const executor = new IdempotentExecutor({
  redis: client,
  namespace: config.namespace,
  ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
  ...(config.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: config.waitTimeoutMs }),
});

// Connect before saying ready, so the first request is not timed against the cluster handshake.
await executor.inspect('warm-up');
serve<ClusterRequests>(
  {
    run: (request) =>
      executor.run(request.key, async (ctx): Promise<ExecutionValue> => {
        const token = request.fence ? await ctx.fencingToken() : undefined;
        push({ event: 'started', id: request.id, pid: process.pid, ...(token ? { token } : {}) });
        if (request.gate !== undefined) await gate(request.gate);
        if (request.sleepMs !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, request.sleepMs));
        }
        return { by: process.pid, ...(token ? { token } : {}) };
      }),
  },
  {
    shutdown: async () => {
      await executor.close();
      client.disconnect();
    },
  },
);
