// What a waiter process does, whatever subject it runs (bench/workers/waiter.ts for the Redis
// subjects, bench/workers/postgres-waiter.ts for the stores of the PostgreSQL scenario): for each
// `round` message it starts `callers` calls of one key at the same moment; fn (in whichever
// caller wins) sleeps `fnMs` and returns the time it ended; each caller reports how long after
// that it settled.
import type { Subject } from '../subjects/subject.js';

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

// CLOCK_MONOTONIC: one clock for every process of the machine, unlike performance.timeOrigin.
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Answers the parent's rounds with `subject` until it says close; tells it when ready. */
export function answerRounds(subject: Subject): void {
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
    const outcomes = await Promise.all(
      Array.from({ length: message.callers }, () => call(message)),
    );
    process.send?.({ type: 'outcomes', outcomes });
  });
  process.send?.({ type: 'ready' });
}
