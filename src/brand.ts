/**
 * Brands: class checks that hold across two loaded copies of this package.
 *
 * An application can load the package twice (its ESM build through `import` and its CJS build
 * through `require`, or two versions side by side). Each copy has its own classes, so
 * `instanceof` fails for an object made by the other copy. A brand is a key of the global
 * symbol registry (`Symbol.for`), the same in every copy, set on the class's prototype.
 */

/**
 * Sets `brand` on the prototype of `cls`, so every instance (of subclasses too) carries
 * it. Not enumerable: neither logged nor copied along with an instance's own properties.
 */
export function setBrand(cls: abstract new (...args: never[]) => object, brand: symbol): void {
  Object.defineProperty(cls.prototype, brand, { value: true });
}

/** True when `value` is an object carrying `brand`, as set by {@link setBrand} in any copy. */
export function hasBrand(value: unknown, brand: symbol): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { readonly [key: symbol]: unknown })[brand] === true
  );
}
