// A process of duplicate callers for the PostgreSQL scenario (bench/scenarios/postgres.ts),
// started with fork(): argv = store ('postgres' or 'redis'), URL, namespace, and for PostgreSQL
// the schema of the scenario's table. It answers `round` messages as bench/workers/waiter.ts
// does: `callers` calls of one key at the same moment; fn (in whichever caller wins) sleeps
// `fnMs` and returns the time it ended; each caller reports how long after that it settled.
import { openSubject } from '../scenarios/postgres.js';
import type { CallerOutcome } from './waiter.js';

interface Round {
  type: 'round';
  key: string;
  callers: number;
  fnMs: number;
}

const [store = '', url = '', namespace = '', schema = ''] = process.argv.slice(2);
if (store !== 'postgres' && store !== 'redis') throw new Error(`unknown store ${store}`);
// CLOCK_MONOTONIC: one clock for every process of the machine, unlike performance.timeOrigin.
const now = () => Number(process.hrtime.bigint()) / 1e6;
const subject = await openSubject(store, url, namespace, schema);

async function call(round: Round): Promise<CallerOutcome> {
  let ranHere = false;
  try {
    const value = (await subject.run(round.key, async () => {
      ranHere = true;
      await new Promise((resolve) => setTimeout(resolve, round.fnMs));
      return { endedAt: now() };
    })) as { endedAt: number };
    if (ranHere) return { kind: 'winner' };
    return { kind: 'value', delayMs: now() - value.endedAt };
  } catch (error) {
    if (subject.isInProgressRejection(error)) return { kind: 'in-progress' };
    return { kind: 'error', error: String(error) };
  }
}

process.on('message', async (message: Round | { type: 'close' }) => {
  if (message.type === 'close') {
    await subject.close();
    process.disconnect();
    return;
  }
  const outcomes = await Promise.all(Array.from({ length: message.callers }, () => call(message)));
  process.send?.({ type: 'outcomes', outcomes });
});
process.send?.({ type: 'ready' });
