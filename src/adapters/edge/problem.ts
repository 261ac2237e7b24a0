import { ErrorCode } from '../../index.js';

/** An HTTP answer any front end can send: status, header pairs and a text body. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/** The adapters that answer HTTP; each has its own family of problem `type` URIs. */
export type ProblemArea = 'http' | 'webhooks';

/**
 * An `application/problem+json` answer (RFC 9457) with a stable `type`:
 * `https://idempotent-executor.dev/problems/<area>/<type>`.
 */
export function problemAnswer(
  area: ProblemArea,
  status: number,
  type: string,
  detail: string,
  ...extra: (readonly [string, string])[]
): HttpAnswer {
  return {
    status,
    headers: [['content-type', 'application/problem+json'], ...extra],
    body: JSON.stringify({
      type: `https://idempotent-executor.dev/problems/${area}/${type}`,
      title: type.replace(/-/g, ' '),
      status,
      detail,
    }),
  };
}

/** What an HTTP front end answers for a library error code. */
export interface CodeAnswer {
  readonly status: number;
  /** The problem `type` (last path segment). */
  readonly type: string;
  /** Whether the answer carries `Retry-After`: the same request can succeed later. */
  readonly retry: boolean;
}

/**
 * The one error-code -> HTTP status map of every adapter that answers HTTP. Codes not listed
 * (a bug, a corrupt record, an unencodable outcome) are 500 `idempotency-error`.
 */
const STATUS_OF_CODE: Readonly<Record<string, CodeAnswer>> = Object.freeze({
  [ErrorCode.KEY_REUSED]: { status: 422, type: 'key-reused', retry: false },
  [ErrorCode.IN_PROGRESS]: { status: 409, type: 'in-progress', retry: true },
  [ErrorCode.WAIT_TIMEOUT]: { status: 409, type: 'in-progress', retry: true },
  [ErrorCode.INVALID_KEY]: { status: 400, type: 'invalid-key', retry: false },
  [ErrorCode.STORE_UNAVAILABLE]: { status: 503, type: 'store-unavailable', retry: true },
  [ErrorCode.OUTCOME_NOT_STORED]: { status: 500, type: 'outcome-not-stored', retry: false },
});

const OTHER: CodeAnswer = Object.freeze({ status: 500, type: 'idempotency-error', retry: false });

/** The status, problem type and retryability of a library error code. */
export function answerForCode(code: string): CodeAnswer {
  return STATUS_OF_CODE[code] ?? OTHER;
}
