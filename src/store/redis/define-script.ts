import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** What a script may be given: Redis arguments are strings, numbers or bytes. */
export type ScriptArg = string | number | Buffer | Uint8Array;

/** PUBLISH on one server, SPUBLISH (sharded, routed by the channel's slot) on a cluster. */
export type PublishCommand = 'PUBLISH' | 'SPUBLISH';

/** A Lua script with its key count, callable with a checked argument tuple and reply type. */
export interface ScriptDefinition<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
  Result = unknown,
> {
  readonly lua: string;
  readonly keys: Keys['length'];
  /** Phantom field carrying the argument types; never set. */
  readonly args?: Args;
  /** Phantom field carrying the reply type; never set. */
  readonly result?: Result;
}

/** Calls a script by EVALSHA, falling back to EVAL on NOSCRIPT. */
export type ScriptCaller<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
  Result,
> = (keys: Keys, args: Args) => Promise<Result>;

/** The two commands a script call uses, with replies as Buffers (records are binary). */
interface EvalCommands {
  evalshaBuffer(sha: string, numberOfKeys: number, ...parts: ScriptArg[]): Promise<unknown>;
  evalBuffer(lua: string, numberOfKeys: number, ...parts: ScriptArg[]): Promise<unknown>;
}

/**
 * Returns a typed caller of `definition` on `connection`: EVALSHA of the script's SHA-1, and on
 * NOSCRIPT (a restarted or failed-over server that never saw it) EVAL of its text, which loads
 * it. The SHA-1 names the exact text, so two versions of this library sharing a server never
 * run each other's script. Sent as plain commands rather than through ioredis's
 * `defineCommand`, whose per-call wrapping (a second promise, a rewrite of the command on
 * every write) cost a fresh run up to a tenth of its time.
 */
export function defineScript<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
  Result,
>(
  connection: Redis | Cluster,
  definition: ScriptDefinition<Keys, Args, Result>,
): ScriptCaller<Keys, Args, Result> {
  const { lua, keys: numberOfKeys } = definition;
  const sha = createHash('sha1').update(lua).digest('hex');
  const commands = connection as unknown as EvalCommands;
  return (keys, args) =>
    commands.evalshaBuffer(sha, numberOfKeys, ...keys, ...args).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return commands.evalBuffer(lua, numberOfKeys, ...keys, ...args);
    }) as Promise<Result>;
}
