import { tutorialBaseline } from '../baselines/tutorial.js';
import { nodeIdempotencySubject } from './node-idempotency.js';
import { powertoolsSubject } from './powertools.js';
import type { SubjectFactory } from './subject.js';

/** What a user would pick instead of the executor (point 7), keyed by the name shown. */
export const peers: Record<string, SubjectFactory> = {
  '@node-idempotency/core': nodeIdempotencySubject,
  '@aws-lambda-powertools/idempotency': powertoolsSubject,
  'tutorial pattern (409)': tutorialBaseline('conflict'),
  'tutorial pattern (poll)': tutorialBaseline('poll'),
};
