// How a service calls the fake provider: the downstream idempotency key as a header, a short
// client timeout, declines as a business error, 5xx as a transient HTTP error.
export class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
  constructor(readonly declineCode: string) {
    super(`Card declined: ${declineCode}`);
  }
}

export class ProviderHttpError extends Error {
  override readonly name = 'ProviderHttpError';
  constructor(readonly status: number) {
    super(`Provider answered ${status}`);
  }
}

export async function chargeThroughProvider(
  url: string,
  idempotencyKey: string,
  params: { order: string; amount: number },
): Promise<{ id: string; order: string; amount: number }> {
  const response = await fetch(`${url}/charges`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey },
    body: JSON.stringify(params),
    signal: AbortSignal.timeout(400),
  });
  const body = (await response.json()) as { error?: { decline_code?: string } };
  if (response.status === 402) throw new CardDeclinedError(body.error?.decline_code ?? 'unknown');
  if (!response.ok) throw new ProviderHttpError(response.status);
  return body as unknown as { id: string; order: string; amount: number };
}
