/** What fn produced: its value, or what it threw. */
export type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown };

/** How a flight (every same-process caller of one key) ended. */
export type Settled =
  | {
      readonly kind: 'outcome';
      readonly outcome: Outcome;
      /** The fingerprint hash of the record (or release notice) the outcome came from. */
      readonly fingerprint: Uint8Array | null;
    }
  | { readonly kind: 'failure'; readonly error: unknown }
  | { readonly kind: 'abandoned' };
