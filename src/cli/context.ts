import type { Readable, Writable } from 'node:stream';
import type { CliArguments } from './arguments.js';
import type { Connection } from './connection.js';

/** Where a command reads and writes; the process's own streams, or a test's. */
export interface Io {
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable;
  readonly stdin: Readable & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface CommandContext {
  readonly args: CliArguments;
  readonly connection: Connection;
  readonly io: Io;
}

export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  REFUSED: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure a command reports with its own exit code (refused, unreadable record...). */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
    /** Machine-readable reason, for `--json`. */
    readonly code: string,
  ) {
    super(message);
  }
}

/** Whether output goes to a terminal that takes colours (and NO_COLOR is not set). */
export function useColor(io: Io): boolean {
  return io.stdout.isTTY === true && io.env.NO_COLOR === undefined;
}

export function printLine(io: Io, line: string): void {
  io.stdout.write(`${line}\n`);
}

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}
