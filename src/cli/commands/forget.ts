import { createInterface } from 'node:readline/promises';
import { IdempotentExecutor } from '../../core/executor.js';
import { recordKeyOf } from '../../core/keys.js';
import { defineScript } from '../../store/redis/define-script.js';
import { channelOf } from '../../store/redis/key-layout.js';
import { ReleaseReply, releaseScript } from '../../store/redis/scripts/release.js';
import { isLeaseToken } from '../../store/store.js';
import {
  type CommandContext,
  CommandError,
  ExitCode,
  type ExitCodeValue,
  type Io,
  printJson,
  printLine,
} from '../context.js';
import { formatDuration } from '../display.js';
import { codec } from '../entry.js';

type ForgetResult = 'deleted' | 'absent' | 'lease-released';

/**
 * `forget <key>`: the executor's `forget()`, which deletes a finished record and refuses a running
 * execution. `--force` ends a running lease too, after a confirmation (or `--yes`).
 */
export async function forgetCommand(context: CommandContext): Promise<ExitCodeValue> {
  const { args, io } = context;
  const key = args.key as string;
  const result = await forget(context, key);
  if (args.json) {
    printJson(io, { key, namespace: args.namespace, result });
  } else {
    const text: Record<ForgetResult, string> = {
      deleted: `Forgot "${key}": the next run executes fn again.`,
      absent: `Nothing to forget: "${key}" has no record.`,
      'lease-released': `Released the running lease of "${key}": the owner's outcome will not be stored; the next run executes fn again.`,
    };
    printLine(io, text[result]);
  }
  return ExitCode.OK;
}

async function forget(context: CommandContext, key: string): Promise<ForgetResult> {
  const { args, connection, io } = context;
  const executor = new IdempotentExecutor({
    redis: connection.client,
    namespace: args.namespace,
    storeTimeoutMs: args.timeoutMs,
  });
  try {
    const deleted = await executor.forget(key);
    return deleted ? 'deleted' : 'absent';
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'IDEMPOTENCY_INVALID_KEY') {
      throw new CommandError((err as Error).message, ExitCode.USAGE, 'INVALID_KEY');
    }
    if (code !== 'IDEMPOTENCY_IN_PROGRESS') throw err;
  } finally {
    await executor.close();
  }
  const recordKey = recordKeyOf(args.namespace, key);
  const [token, pttl] = await Promise.all([
    connection.client.getBuffer(recordKey),
    connection.client.pttl(recordKey),
  ]);
  if (token === null || !isLeaseToken(token)) {
    // It finished (or was forgotten) since: forget what is there now, without force.
    return forget({ ...context, args: { ...args, force: false } }, key);
  }
  const expires = `its lease expires in ${formatDuration(Math.max(pttl, 0))} unless renewed`;
  if (!args.force) {
    throw new CommandError(
      `Refused: an execution of "${key}" is running (${expires}). Forgetting it would let a ` +
        'second execution start while the first still runs. Wait for it to finish, or use ' +
        '--force (asks for confirmation; add --yes in scripts).',
      ExitCode.REFUSED,
      'RUNNING',
    );
  }
  if (!args.yes) await confirm(io, key, expires);
  // The store's own release, with the token the operator saw: a newer lease or a record written
  // since is never deleted, and waiters are told at once (they claim instead of waiting out the
  // lease). A live owner finds its token gone: its ctx.signal aborts, it gets LEASE_LOST.
  const release = defineScript(connection.client, releaseScript);
  const reply = await release(
    [recordKey, channelOf(recordKey)],
    [
      token.toString(),
      codec.encodeReleaseNotice({ fingerprint: null, outcome: null }),
      connection.cluster ? 'SPUBLISH' : 'PUBLISH',
    ],
  );
  if (reply === ReleaseReply.RELEASED) return 'lease-released';
  // The lease ended or changed hands since the prompt: look again rather than act on old news.
  return forget({ ...context, args: { ...args, force: false } }, key);
}

/** Asks on the terminal; refuses when there is no terminal to ask on. */
async function confirm(io: Io, key: string, expires: string): Promise<void> {
  if (io.stdin.isTTY !== true) {
    throw new CommandError(
      `Refused: "${key}" is running and --force needs a confirmation; there is no terminal to ` +
        'ask on. Add --yes to confirm from a script.',
      ExitCode.REFUSED,
      'NOT_CONFIRMED',
    );
  }
  const prompt = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await prompt.question(
      `An execution of "${key}" is running (${expires}).\n` +
        'Releasing its lease lets another execution start; the running one will not store its ' +
        'outcome.\nType "yes" to release it: ',
    );
    if (answer.trim().toLowerCase() !== 'yes') {
      throw new CommandError(
        'Not confirmed: nothing was changed.',
        ExitCode.REFUSED,
        'NOT_CONFIRMED',
      );
    }
  } finally {
    prompt.close();
  }
}
