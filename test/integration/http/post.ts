// A JSON POST as clients send it, with an optional Idempotency-Key.
export const post = (
  url: string,
  key: string | undefined,
  body: unknown = { item: 'book', qty: 1 },
  headers: Record<string, string> = {},
  method = 'POST',
) =>
  fetch(url, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(key === undefined ? {} : { 'idempotency-key': key }),
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** The problem `type` URI of the HTTP adapter for `type`. */
export const problemType = (type: string) =>
  `https://idempotent-executor.dev/problems/http/${type}`;
