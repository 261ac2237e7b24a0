import { executorSubject } from './executor.js';
import { peers } from './index.js';
import type { SubjectFactory } from './subject.js';

/** Every subject the bench compares, the executor first. */
export const subjects: ReadonlyMap<string, SubjectFactory> = new Map([
  ['idempotent-executor', executorSubject],
  ...Object.entries(peers),
]);
