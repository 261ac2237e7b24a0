import type { Cluster, Redis } from 'ioredis';
import { VERSION } from '../../version.js';

/** What a script may be given: Redis arguments are strings, numbers or bytes. */
export type ScriptArg = string | number | Buffer | Uint8Array;

/** A Lua script with its key count, callable with a checked argument tuple. */
export interface ScriptDefinition<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
> {
  readonly name: string;
  readonly lua: string;
  readonly keys: Keys['length'];
  /** Phantom field carrying the argument types; never set. */
  readonly args?: Args;
}

/** Calls a script by EVALSHA, falling back to EVAL on NOSCRIPT (ioredis `defineCommand`). */
export type ScriptCaller<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
  Result,
> = (keys: Keys, args: Args) => Promise<Result>;

/**
 * Registers `definition` on `connection` under a name that carries the package version, so
 * two versions of this library sharing one connection or server never run each other's text,
 * and returns a typed caller that receives replies as Buffers (records are binary).
 */
export function defineScript<
  Keys extends readonly string[],
  Args extends readonly ScriptArg[],
  Result,
>(
  connection: Redis | Cluster,
  definition: ScriptDefinition<Keys, Args>,
): ScriptCaller<Keys, Args, Result> {
  const name = `idem_${definition.name}_${VERSION.replace(/\W/g, '_')}`;
  connection.defineCommand(name, { lua: definition.lua, numberOfKeys: definition.keys });
  const command = (
    connection as unknown as Record<string, (...parts: ScriptArg[]) => Promise<Result>>
  )[`${name}Buffer`];
  if (command === undefined) throw new Error(`ioredis did not define the script command ${name}`);
  return (keys, args) => command.call(connection, ...keys, ...args);
}
