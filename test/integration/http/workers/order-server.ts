// An order API server process: prints its URL, serves until killed.
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../../../src/index.js';
import { type FrontEnd, startOrderApi } from '../servers.js';

const [frontEnd = 'express', namespace = '', counterKey = ''] = process.argv.slice(2);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace });
const api = await startOrderApi(frontEnd as FrontEnd, { redis, executor, counterKey, workMs: 300 });
process.stdout.write(`${JSON.stringify({ url: api.url })}\n`);
process.on('SIGTERM', async () => {
  await api.close();
  await executor.close();
  redis.disconnect();
  process.exit(0);
});
