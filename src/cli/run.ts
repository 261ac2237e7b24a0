import { type CliArguments, parseArguments, USAGE, UsageError } from './arguments.js';
import { forgetCommand } from './commands/forget.js';
import { inspectCommand } from './commands/inspect.js';
import { listCommand } from './commands/list.js';
import { statsCommand } from './commands/stats.js';
import { watchCommand } from './commands/watch.js';
import { ConnectError, connect, messageOf } from './connection.js';
import {
  type CommandContext,
  CommandError,
  ExitCode,
  type ExitCodeValue,
  type Io,
} from './context.js';

/**
 * Runs one command line and resolves with its exit code; never throws. Errors go to stderr:
 * a sentence, or with `--json` one object `{ "error": { "code", "message" } }`.
 * `stop` ends `watch` (the process's SIGINT and SIGTERM).
 */
export async function runCli(
  argv: readonly string[],
  io: Io,
  stop: AbortSignal,
): Promise<ExitCodeValue> {
  let args: CliArguments;
  try {
    args = parseArguments(argv, io.env);
  } catch (err) {
    const json = argv.includes('--json');
    report(io, json, 'USAGE', `${messageOf(err)}`);
    if (!json) io.stderr.write(`\n${USAGE}`);
    return ExitCode.USAGE;
  }
  if (args.command === 'help') {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  let context: CommandContext | undefined;
  try {
    const connection = await connect({
      url: args.redisUrl,
      cluster: args.cluster,
      timeoutMs: args.timeoutMs,
    });
    context = { args, connection, io };
    switch (args.command) {
      case 'inspect':
        return await inspectCommand(context);
      case 'forget':
        return await forgetCommand(context);
      case 'list':
        return await listCommand(context);
      case 'stats':
        return await statsCommand(context);
      case 'watch':
        return await watchCommand(context, stop);
      default:
        return ExitCode.USAGE;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      report(io, args.json, 'USAGE', err.message);
      return ExitCode.USAGE;
    }
    if (err instanceof CommandError) {
      report(io, args.json, err.code, err.message);
      return err.exitCode;
    }
    if (err instanceof ConnectError) {
      report(io, args.json, 'REDIS_UNAVAILABLE', err.message);
      return ExitCode.FAILED;
    }
    const code = (err as { code?: unknown }).code;
    report(
      io,
      args.json,
      typeof code === 'string' && code.startsWith('IDEMPOTENCY_') ? code : 'FAILED',
      messageOf(err),
    );
    return ExitCode.FAILED;
  } finally {
    context?.connection.close();
  }
}

function report(io: Io, json: boolean, code: string, message: string): void {
  if (json) io.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  else io.stderr.write(`idempotent-executor: ${message}\n`);
}
