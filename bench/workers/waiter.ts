// A process of duplicate callers for the waiters scenario (bench/scenarios/waiters.ts), started
// with fork(): argv = subject name, Redis URL, namespace. For each `round` message it starts
// `callers` calls of one key at the same moment; fn (in whichever caller wins) sleeps `fnMs` and
// returns the wall-clock time it ended. Each caller reports how long after that it settled.
import { subjects } from '../subjects/all.js';

interface Round {
  type: 'round';
  key: string;
  callers: number;
  fnMs: number;
}

export interface CallerOutcome {
  /** 'winner': this caller's own fn ran. */
  kind: 'winner' | 'value' | 'in-progress' | 'error';
  /** For 'value': ms from the end of the winner's fn to this caller's resolution. */
  delayMs?: number;
  error?: string;
}

const [subjectName = '', redisUrl = '', namespace = ''] = process.argv.slice(2);
// CLOCK_MONOTONIC: one clock for every process of the machine, unlike performance.timeOrigin.
const now = () => Number(process.hrtime.bigint()) / 1e6;
const factory = subjects.get(subjectName);
if (factory === undefined) throw new Error(`unknown subject ${subjectName}`);
const subject = await factory(redisUrl, namespace);

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
