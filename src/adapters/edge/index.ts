// The edge every adapter shares: problem details and the error-code -> status map, key
// scoping and escaping, well-formedness checks, option validation. Internal: not a subpath.

export { assertId, assertScopeOption, isWellFormed, scopedKey } from './keys.js';
export { assertExecutor, assertOptionsObject, functionOption, integerOption } from './options.js';
export type { CodeAnswer, HttpAnswer, ProblemArea } from './problem.js';
export { answerForCode, problemAnswer } from './problem.js';
