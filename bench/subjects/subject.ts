/**
 * One thing the bench measures: the executor, a peer library, or a baseline pattern, reduced to
 * "run `fn` once for `key` and give every caller its outcome". Each subject is configured as its
 * own documentation recommends, on the Redis at `redisUrl`.
 */
export interface Subject {
  /** Shown in tables and charts. */
  readonly name: string;
  /**
   * Runs `fn` for `key` unless it already ran (or is running): resolves with fn's value or the
   * stored one. A duplicate of a running execution either waits for its outcome or rejects,
   * whichever the subject does; {@link Subject.isInProgressRejection} tells such rejections apart.
   */
  run(key: string, fn: () => Promise<unknown>): Promise<unknown>;
  /** True when `error` is this subject's "a duplicate is still running" answer (no waiting). */
  isInProgressRejection(error: unknown): boolean;
  /** Closes every connection the subject opened. */
  close(): Promise<void>;
}

/** Builds a subject whose keys all live under `namespace` on the Redis at `redisUrl`. */
export type SubjectFactory = (redisUrl: string, namespace: string) => Promise<Subject>;
