/** What a verifier and an event id extractor read: the delivery's headers and its raw body bytes. */
export interface Delivery {
  /**
   * A header's value by name, or undefined. The library always asks with lower-case names;
   * build a delivery from a header map with {@link deliveryOf} and any spelling is found.
   */
  header(name: string): string | undefined;
  /** The raw request body, exactly as received (what signatures are computed over). */
  readonly body: Uint8Array;
}

/** A header map as frameworks hand it over: Node's `IncomingHttpHeaders`, a Lambda event's, … */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * A {@link Delivery} over a Fetch `Headers` object or a plain header map, whatever the spelling
 * of its names (`X-GitHub-Delivery`, `x-github-delivery`): header names are case-insensitive.
 * Of a repeated header, the first value.
 */
export function deliveryOf(headers: Headers | HeaderMap, body: Uint8Array): Delivery {
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    return { header: (name) => headers.get(name) ?? undefined, body };
  }
  const byName = new Map<string, string>();
  for (const [name, value] of Object.entries(headers as HeaderMap)) {
    const first = typeof value === 'string' ? value : value?.[0];
    const lower = name.toLowerCase();
    if (first !== undefined && !byName.has(lower)) byName.set(lower, first);
  }
  return { header: (name) => byName.get(name.toLowerCase()), body };
}

/** `delivery`, asked for its headers by lower-case name whatever name the caller gives. */
export function lowerCaseLookups(delivery: Delivery): Delivery {
  return { header: (name) => delivery.header(name.toLowerCase()), body: delivery.body };
}
