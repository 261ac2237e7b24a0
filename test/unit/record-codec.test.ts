import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CorruptRecordError, ReplayedError, SerializationError } from '../../src/core/errors.js';
import { RecordCodec, sameFingerprint } from '../../src/core/record-codec.js';

class DeclineError extends Error {
  override readonly name = 'DeclineError';
}

const codec = () => new RecordCodec([DeclineError], 1024);
const roundTrip = (value: unknown, c = codec()) => {
  const bytes = c.encodeRecord({
    outcome: { ok: true, value },
    fingerprint: null,
    startedAt: 1,
    completedAt: 2,
  });
  const decoded = c.decode(bytes, 'k');
  assert.equal(decoded.kind, 'record');
  return decoded.kind === 'record' && decoded.record.outcome.ok
    ? decoded.record.outcome.value
    : undefined;
};

describe('RecordCodec', () => {
  it('stores records as a Buffer starting with the record tag byte', () => {
    const bytes = codec().encodeRecord({
      outcome: { ok: true, value: 1 },
      fingerprint: null,
      startedAt: 0,
      completedAt: 0,
    });
    assert.ok(Buffer.isBuffer(bytes));
    assert.equal(bytes[0], 0x01);
  });

  it('round-trips nested values with undefined, Date, BigInt, Map, Set, Buffer and Uint8Array', () => {
    const value = [
      {
        a: undefined,
        b: new Map([[1n, new Set([new Date(5)])]]),
        c: Buffer.from('x'),
        d: new Uint8Array(2),
      },
    ];
    assert.deepEqual(roundTrip(value), value);
  });

  it('rebuilds registered error classes without calling their constructor', () => {
    let constructed = 0;
    class Counted extends Error {
      constructor(message: string) {
        super(message);
        constructed++;
      }
    }
    const c = new RecordCodec([Counted], 1024);
    const error = roundTrip({ err: new Counted('boom') }, c) as { err: Counted };
    assert.ok(error.err instanceof Counted);
    assert.equal(error.err.message, 'boom');
    assert.equal(constructed, 1);
  });

  it('rebuilds an unregistered error as ReplayedError keeping its name', () => {
    class Other extends Error {
      override name = 'Other';
    }
    const { err } = roundTrip({ err: new Other('x') }) as { err: Error };
    assert.ok(err instanceof ReplayedError);
    assert.equal(err.name, 'Other');
  });

  it('never lets a stored __proto__ key reach an object prototype', () => {
    const c = codec();
    // A record whose value is { __proto__: { x: 1 } }, written by hand as msgpack.
    const poisoned = Buffer.concat([
      Buffer.from([0x01, 0x95, 0x00, 0x81, 0xa9]),
      Buffer.from('__proto__'),
      Buffer.from([0x81, 0xa1, 0x78, 0x01, 0xc0, 0x00, 0x00]),
    ]);
    assert.throws(() => c.decode(poisoned, 'k'), CorruptRecordError);
    assert.equal(({} as Record<string, unknown>).x, undefined);
  });

  it('refuses functions, symbols, circular structures and own __proto__ properties', () => {
    const circular: unknown[] = [];
    circular.push(circular);
    for (const value of [
      () => 1,
      Symbol('s'),
      circular,
      JSON.parse('{"__proto__": 1}'),
      new Float32Array(1),
    ]) {
      assert.throws(() => roundTrip(value), SerializationError);
    }
  });

  it('refuses a record over maxRecordBytes before anything is stored', () => {
    assert.throws(() => roundTrip('x'.repeat(2000)), {
      code: 'IDEMPOTENCY_SERIALIZATION',
      message: /maxRecordBytes/,
    });
  });

  it('reports bytes that are not a record as IDEMPOTENCY_CORRUPT_RECORD', () => {
    for (const bytes of [
      Buffer.alloc(0),
      Buffer.from([0x01]),
      Buffer.from([0x09, 0x90]),
      Buffer.from([0x01, 0x93, 1, 2, 3]),
    ]) {
      assert.throws(() => codec().decode(bytes, 'k'), CorruptRecordError);
    }
  });

  it('hashes fingerprints canonically: object key order does not matter, values do', () => {
    const c = codec();
    assert.ok(
      sameFingerprint(c.fingerprint({ a: 1, b: 2 }, 'k'), c.fingerprint({ b: 2, a: 1 }, 'k')),
    );
    assert.ok(!sameFingerprint(c.fingerprint({ a: 1 }, 'k'), c.fingerprint({ a: 2 }, 'k')));
    assert.ok(!sameFingerprint(c.fingerprint('1', 'k'), c.fingerprint(1, 'k')));
  });
});
