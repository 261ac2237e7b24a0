// Property tests of the record codec: whatever bytes sit under a record key, decoding returns or
// throws CorruptRecordError (never another error, never a polluted prototype); and what fn
// returns comes back from a record deep-equal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExtData, encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import { CorruptRecordError } from '../../src/core/errors.js';
import { RecordCodec } from '../../src/core/record-codec.js';
import { CardDeclinedError } from './workers/errors.js';

const RECORD_TAG = 0x01;
const RELEASE_TAG = 0x02;
/** Extension types the codec reads (undefined, Map, Set, BigInt, Buffer, Error) and msgpack's timestamp. */
const EXTENSION_TYPES = [-1, 0, 1, 2, 3, 4, 5, 6];

const codec = new RecordCodec([CardDeclinedError], 16 * 1024 * 1024);

/** Decodes `bytes`; fails the property unless it returns a record or notice or throws CorruptRecordError. */
function decodesOrReportsCorrupt(bytes: Uint8Array): void {
  try {
    const decoded = codec.decode(bytes, 'fuzzed');
    assert.ok(decoded.kind === 'record' || decoded.kind === 'release', `kind ${decoded.kind}`);
  } catch (error) {
    if (!(error instanceof CorruptRecordError)) {
      throw new Error(`decode threw ${String(error)} instead of CorruptRecordError`, {
        cause: error,
      });
    }
    assert.equal(error.code, 'IDEMPOTENCY_CORRUPT_RECORD');
  } finally {
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype polluted');
  }
}

const tagged = (tag: number) =>
  fc.uint8Array({ maxLength: 512 }).map((rest) => Buffer.concat([Buffer.from([tag]), rest]));

/** msgpack that is well formed but not necessarily a record: values, extensions, hostile keys. */
const msgpackValue = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.anything({
      key: fc.constantFrom('__proto__', 'constructor', 'prototype', 'polluted', 'message', 'a'),
      maxDepth: 3,
    }),
    fc
      .tuple(fc.constantFrom(...EXTENSION_TYPES), fc.uint8Array({ maxLength: 48 }))
      .map(([type, data]) => new ExtData(type, data)),
    fc
      .tuple(fc.constantFrom(...EXTENSION_TYPES), tie('value'))
      .map(([type, inner]) => new ExtData(type, encode(inner))),
    fc.array(tie('value'), { maxLength: 6 }),
  ),
}));

/** A record or notice body of the right outer shape holding fuzzed parts. */
const recordLike = fc
  .tuple(
    fc.constantFrom(RECORD_TAG, RELEASE_TAG),
    fc.oneof(
      fc.tuple(
        fc.constantFrom(0, 1, 2),
        msgpackValue.value,
        fc.oneof(fc.constant(null), fc.uint8Array({ minLength: 16, maxLength: 16 })),
        fc.integer(),
        fc.integer(),
      ),
      fc.tuple(fc.constant(null), fc.oneof(fc.constant(null), fc.tuple(msgpackValue.value))),
      msgpackValue.value,
    ),
  )
  .map(([tag, body]) => Buffer.concat([Buffer.from([tag]), encode(body)]));

/** JSON-like values plus what the codec promises to keep: undefined, Date, BigInt, Map, Set, bytes. */
const storable = fc.letrec<{ value: unknown }>((tie) => {
  const key = fc.string({ unit: 'grapheme', maxLength: 8 }).filter((name) => name !== '__proto__');
  return {
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.constant(undefined),
      fc.boolean(),
      fc.integer(),
      // -0 is left out: like JSON, msgpack writes it as the integer 0.
      fc.double().map((n) => (Object.is(n, -0) ? 0 : n)),
      fc.string({ unit: 'grapheme', maxLength: 300 }),
      fc.bigInt(),
      fc.date({ noInvalidDate: true }),
      fc.uint8Array({ maxLength: 32 }),
      fc.uint8Array({ maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
      fc.array(tie('value'), { maxLength: 5 }),
      // Null-prototype objects come back as plain objects, as from JSON.parse.
      fc.dictionary(key, tie('value'), { maxKeys: 5, noNullPrototype: true }),
      fc
        .array(fc.tuple(tie('value'), tie('value')), { maxLength: 4 })
        .map((entries) => new Map(entries)),
      fc.array(tie('value'), { maxLength: 4 }).map((items) => new Set(items)),
    ),
  };
});

function roundTrip(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) {
  const bytes = codec.encodeRecord({ outcome, fingerprint: null, startedAt: 1, completedAt: 2 });
  const decoded = codec.decode(bytes, 'round-trip');
  assert.equal(decoded.kind, 'record');
  return decoded.kind === 'record' ? decoded.record.outcome : undefined;
}

describe('RecordCodec#decode on bytes it did not write', () => {
  it('returns or throws CorruptRecordError for random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), decodesOrReportsCorrupt), {
      numRuns: 10_000,
    });
  });

  it('returns or throws CorruptRecordError for random bytes after the record tag 0x01', () => {
    fc.assert(fc.property(tagged(RECORD_TAG), decodesOrReportsCorrupt), { numRuns: 10_000 });
  });

  it('returns or throws CorruptRecordError for random bytes after the release-notice tag 0x02', () => {
    fc.assert(fc.property(tagged(RELEASE_TAG), decodesOrReportsCorrupt), { numRuns: 10_000 });
  });

  it('returns or throws CorruptRecordError for well-formed msgpack of the wrong shape, extensions and __proto__ keys after a tag', () => {
    fc.assert(fc.property(recordLike, decodesOrReportsCorrupt), { numRuns: 10_000 });
  });
});

describe('RecordCodec round trip', () => {
  it('decodes every encoded JSON-like value (with undefined, Date, BigInt, Map, Set, Uint8Array, Buffer) to a deep-equal value', () => {
    fc.assert(
      fc.property(storable.value, (value) => {
        assert.deepStrictEqual(roundTrip({ ok: true, value }), { ok: true, value });
      }),
      { numRuns: 2_000 },
    );
  });

  it('decodes a registered error with random message and properties to the same class, message and properties', () => {
    const properties = fc.dictionary(
      fc
        .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 })
        .filter(
          (name) =>
            !['__proto__', 'message', 'stack', 'name', 'code', 'declineCode', 'cause'].includes(
              name,
            ),
        ),
      storable.value,
      { maxKeys: 4, noNullPrototype: true },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 64 }), properties, (message, extra) => {
        const error = Object.assign(new CardDeclinedError(message, 'do_not_honor'), extra);
        const outcome = roundTrip({ ok: false, error });
        const replayed = outcome?.ok === false ? outcome.error : undefined;
        assert.ok(replayed instanceof CardDeclinedError);
        assert.equal(replayed.message, message);
        assert.deepStrictEqual({ ...replayed }, { ...error });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a string with an unpaired surrogate (a truncated emoji) whatever its length', () => {
    // Prepare: '\ud83d' is the first half of an emoji cut in two, a string JavaScript allows but
    // UTF-8 cannot hold; msgpack would keep short ones and mangle long ones, so replays differ.
    const values = [
      '\ud83d',
      `${'a'.repeat(10)}\ud83d`,
      `${'a'.repeat(300)}\ud83d`,
      `${'b'.repeat(5_000)}\udc00`,
      { [`key\ud83d`]: 1 },
    ];

    // Act
    const outcomes = values.map((value) => {
      try {
        roundTrip({ ok: true, value });
        return 'stored';
      } catch (error) {
        return (error as { code?: string }).code;
      }
    });

    // Assess
    assert.deepEqual(
      outcomes,
      values.map(() => 'IDEMPOTENCY_SERIALIZATION'),
    );
  });
});
