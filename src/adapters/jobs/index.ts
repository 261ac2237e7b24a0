export type {
  IdempotentProcessor,
  IdempotentProcessorOptions,
  JobRunContext,
  ProcessedJob,
} from './bullmq-processor.js';
export { idempotentProcessor } from './bullmq-processor.js';
export type { MessageGuardOptions, MessageRunOptions } from './message-guard.js';
export { MessageGuard } from './message-guard.js';
export type { JobRunSettings } from './options.js';
export { defaultJobRunSettings } from './options.js';
export { isUnrecoverable } from './unrecoverable.js';
