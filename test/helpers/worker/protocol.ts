// The one protocol between a parent (a test, the chaos harness) and the worker processes it
// starts: JSON lines. On the worker's stdin, requests `{ op, body, id? }` (with an `id` when the
// parent waits for the reply). On its stdout, `{ ready: pid }` once it serves, replies
// `{ reply: id, ok, value | error }`, and events `{ event, … }` pushed whenever it likes.
// Both sides import this module; it opens nothing.

/**
 * The requests a worker answers, written as an interface of methods: `run(body: RunRequest):
 * Value` says that op `run` takes a `RunRequest` and answers a `Value`.
 */
export type Requests<R> = { readonly [Op in keyof R]: (body: never) => unknown };

/** A worker that answers no request of its own (it only pushes events). */
export type NoRequests = Record<never, never>;

export type BodyOf<R, Op extends keyof R> = R[Op] extends (body: infer B) => unknown ? B : never;

export type ReplyOf<R, Op extends keyof R> = R[Op] extends (body: never) => infer V
  ? Awaited<V>
  : never;

/** What a worker pushes to its parent: any JSON object named by `event`. */
export interface WorkerEvent {
  readonly event: string;
}

/** Ops every serving worker answers itself (a domain's requests may not use these names). */
export const BuiltInOp = {
  /** Run the worker's shutdown, then exit 0. */
  exit: 'exit',
  /** Open the named gate (see `gate()` in child.ts). */
  open: 'open',
} as const;

export interface RequestLine {
  readonly op: string;
  readonly body?: unknown;
  /** Present when the parent waits for a reply with this id. */
  readonly id?: number;
}

export type ReplyLine = { readonly reply: number } & Settled<unknown>;

export interface ReadyLine {
  readonly ready: number;
}

/** An outcome as data: a value, or the error it failed with as it crossed the pipe. */
export type Settled<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: TransportedError };

/** An error as seen in its process, in a form that survives JSON between processes. */
export interface TransportedError {
  /**
   * The constructor names along its prototype chain, most derived first (`Object` left out):
   * `instanceof` for a process that does not have the classes.
   */
  readonly classes: readonly string[];
  readonly name: unknown;
  readonly message: unknown;
  readonly code: unknown;
  /** Own enumerable properties, sorted by name. */
  readonly properties: readonly (readonly [string, unknown])[];
  readonly cause: TransportedError | { readonly value: unknown } | null;
}

/** `error` as it travels: what a typed-error assertion compares, on either side of the pipe. */
export function describeError(error: unknown, depth = 0): TransportedError {
  const object = (typeof error === 'object' && error !== null ? error : {}) as Record<
    string,
    unknown
  >;
  const cause = 'cause' in object ? object.cause : undefined;
  return {
    classes: classesOf(error),
    name: jsonSafe(object.name),
    message: jsonSafe(object.message),
    code: jsonSafe(object.code),
    properties: Object.keys(object)
      .sort()
      .map((name) => [name, jsonSafe(object[name])] as const),
    cause:
      !('cause' in object) || depth > 5
        ? null
        : cause instanceof Error
          ? describeError(cause, depth + 1)
          : { value: jsonSafe(cause) },
  };
}

function classesOf(value: unknown): string[] {
  const names: string[] = [];
  if (typeof value !== 'object' || value === null) return names;
  for (
    let prototype: unknown = Object.getPrototypeOf(value);
    prototype !== null && prototype !== Object.prototype;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    const made = Object.getOwnPropertyDescriptor(prototype, 'constructor')?.value as
      | { name?: unknown }
      | undefined;
    names.push(String(made?.name ?? '(anonymous)'));
  }
  return names;
}

function jsonSafe(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value) ?? 'null');
  } catch {
    return String(value);
  }
}

/**
 * Wall-clock time in ms with sub-ms precision, comparable across processes on one machine: what
 * workers stamp their events with and the parent stamps their exits with.
 */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
