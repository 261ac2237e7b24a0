// A decline is an answer, not a failure: cached and replayed as the same class. A gateway
// timeout is a failure: not cached, so a retry runs again.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import { Redis } from 'ioredis';

class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
  constructor(readonly declineCode: string) {
    super(`Card declined: ${declineCode}`);
  }
}
class GatewayTimeoutError extends Error {
  override readonly name = 'GatewayTimeoutError';
}

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const options = {
  redis,
  namespace: `example-errors-${process.pid}`,
  // Register every class you test with instanceof: replays in other processes are rebuilt from it.
  errorClasses: [CardDeclinedError, GatewayTimeoutError],
  shouldCacheError: (error: unknown) => !(error instanceof GatewayTimeoutError),
};
const executor = new IdempotentExecutor(options);
const otherProcess = new IdempotentExecutor(options); // its own connections, like another process

let attempts = 0;
const declined = await executor
  .run('charge:o-2', async () => {
    attempts++;
    throw new CardDeclinedError('insufficient_funds');
  })
  .catch((error: unknown) => error);
const replayed = await otherProcess
  .run('charge:o-2', async () => 'never runs')
  .catch((error: unknown) => error);

assert.ok(declined instanceof CardDeclinedError);
assert.ok(replayed instanceof CardDeclinedError);
assert.equal(replayed.declineCode, 'insufficient_funds');
assert.equal(attempts, 1);

let gatewayCalls = 0;
const flaky = async () => {
  gatewayCalls++;
  if (gatewayCalls === 1) throw new GatewayTimeoutError('timed out');
  return 'charged';
};
await assert.rejects(executor.run('charge:o-3', flaky), GatewayTimeoutError);
assert.equal(await otherProcess.run('charge:o-3', flaky), 'charged');
assert.equal(gatewayCalls, 2);
console.log(
  'decline replayed as CardDeclinedError; timeout retried:',
  gatewayCalls,
  'gateway calls',
);

await Promise.all([executor.forget('charge:o-2'), executor.forget('charge:o-3')]);
await Promise.all([executor.close(), otherProcess.close()]);
await redis.quit();
