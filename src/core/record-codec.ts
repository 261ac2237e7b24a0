import { createHash } from 'node:crypto';
import { Decoder, Encoder, ExtData, ExtensionCodec } from '@msgpack/msgpack';
import { CorruptRecordError, ReplayedError, SerializationError } from './errors.js';
import { isWellFormed } from './keys.js';
import type { Outcome } from './outcome.js';

/**
 * Records and pub/sub notices are msgpack behind a one-byte version/kind tag. A lease token
 * (32 lowercase hex characters) can never start with either tag, so a reader tells a running
 * execution from a finished one by the first byte.
 */
const RECORD_TAG = 0x01;
const RELEASE_TAG = 0x02;
const RENEWAL_TAG = 0x03;

/** msgpack extension types for what plain msgpack would lose. Dates use msgpack's timestamp. */
const Ext = {
  UNDEFINED: 0,
  MAP: 1,
  SET: 2,
  BIGINT: 3,
  BUFFER: 4,
  ERROR: 5,
  /** A `Date` whose time is NaN: msgpack's timestamp would turn it into 1970-01-01. */
  INVALID_DATE: 6,
} as const;

/**
 * The deepest nesting of objects and arrays accepted in a value, error or fingerprint: msgpack's
 * own encoder limit. Checked while walking, so a deeper value is a `SerializationError` rather
 * than a stack overflow.
 */
const MAX_NESTING = 100;

/**
 * An extension codec that refuses the types it does not know: msgpack's default hands them to
 * the caller as raw `ExtData`, and a record holding one was not written by this library.
 */
class StrictExtensionCodec extends ExtensionCodec {
  override decode(data: Uint8Array, type: number, context: undefined): unknown {
    // Negative types are msgpack's own (the timestamp of a Date).
    if (type >= 0 && !KNOWN_EXT_TYPES.has(type)) throw new Error(`unknown extension type ${type}`);
    return super.decode(data, type, context);
  }
}

const KNOWN_EXT_TYPES: ReadonlySet<number> = new Set(Object.values(Ext));

/** A completed record as stored under the key. */
export interface StoredRecord {
  readonly outcome: Outcome;
  /** Hash of the fingerprint the record was made with, or null when none was given. */
  readonly fingerprint: Uint8Array | null;
  readonly startedAt: number;
  readonly completedAt: number;
}

/** Published when a lease is released without a record (an error that is not cached). */
export interface ReleaseNotice {
  readonly fingerprint: Uint8Array | null;
  /** The uncached error for current waiters, or null when there is none to hand on. */
  readonly outcome: Outcome | null;
}

/**
 * The record encodes but is over `maxRecordBytes`. Unlike an unencodable outcome, the executor
 * still stores that fn ran (see `OutcomeNotStoredError`).
 */
export class RecordTooLargeError extends SerializationError {
  constructor(
    /** The size the record would have had, bytes. */
    readonly bytes: number,
    maxRecordBytes: number,
  ) {
    super(`The record would be ${bytes} bytes, over maxRecordBytes (${maxRecordBytes})`);
  }
}

/** A class whose instances are rebuilt on replay (see `errorClasses`). */
// biome-ignore lint/suspicious/noExplicitAny: constructor parameters of user classes are unknown
export type ErrorClass = abstract new (...args: any[]) => Error;

const BUILT_IN_ERRORS: readonly ErrorClass[] = [
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
];

const EMPTY = new Uint8Array(0);
const UNDEFINED_MARKER = new ExtData(Ext.UNDEFINED, EMPTY);
const INVALID_DATE_MARKER = new ExtData(Ext.INVALID_DATE, EMPTY);

/** Where in a value an unencodable part sits, for error messages: `value.items[3].price`. */
type Path = string;

/** State of one walk over a value: the objects above the current one, and how to encode parts. */
interface Walk {
  readonly ancestors: Set<object>;
  /** Encodes the contents of Maps, Sets and errors (sorting keys when making a fingerprint). */
  readonly encoder: Encoder;
}

/**
 * Encodes and decodes records, pub/sub notices and fingerprints. One instance per executor:
 * it owns reusable msgpack encoder/decoder state and the error-class registry.
 */
export class RecordCodec {
  private readonly registry = new Map<string, ErrorClass>();
  private readonly encoder: Encoder;
  private readonly canonicalEncoder: Encoder;
  private readonly decoder: Decoder;

  constructor(
    errorClasses: readonly ErrorClass[],
    private readonly maxRecordBytes: number,
  ) {
    for (const cls of [...BUILT_IN_ERRORS, ...errorClasses]) this.registry.set(cls.name, cls);
    const extensionCodec = new StrictExtensionCodec();
    for (const type of Object.values(Ext)) {
      extensionCodec.register({
        type,
        encode: () => null,
        decode: (data) => this.decodeExt(type, data),
      });
    }
    this.encoder = new Encoder({ extensionCodec });
    this.canonicalEncoder = new Encoder({ extensionCodec, sortKeys: true });
    this.decoder = new Decoder({ extensionCodec });
  }

  /**
   * @param maxBytes the size limit; the executor lifts it only for its own small marker records.
   * @throws SerializationError when the outcome cannot be encoded, {@link RecordTooLargeError}
   * when it is over the size limit.
   */
  encodeRecord(record: StoredRecord, maxBytes = this.maxRecordBytes): Uint8Array {
    const { outcome } = record;
    const payload = outcome.ok
      ? this.wire(outcome.value, 'value', this.encoder)
      : this.wire(outcome.error, 'error', this.encoder);
    const body = [
      outcome.ok ? 0 : 1,
      payload,
      record.fingerprint,
      record.startedAt,
      record.completedAt,
    ];
    return this.frame(RECORD_TAG, body, maxBytes);
  }

  /** @throws SerializationError when the notice's outcome cannot be encoded. */
  encodeReleaseNotice(notice: ReleaseNotice): Uint8Array {
    const { outcome } = notice;
    if (outcome === null) return this.frame(RELEASE_TAG, [notice.fingerprint, null]);
    const error = outcome.ok ? undefined : this.wire(outcome.error, 'error', this.encoder);
    return this.frame(RELEASE_TAG, [notice.fingerprint, [error]]);
  }

  /** Published at each lease renewal: tells waiters the lease now runs `leaseMs` longer. */
  encodeRenewalNotice(leaseMs: number): Uint8Array {
    return this.frame(RENEWAL_TAG, leaseMs);
  }

  /**
   * Decodes bytes read from a record key or received on its channel.
   * @throws CorruptRecordError for anything that is not a well-formed record or notice.
   */
  decode(
    bytes: Uint8Array,
    key: string,
  ): { kind: 'record'; record: StoredRecord } | { kind: 'release'; notice: ReleaseNotice } {
    try {
      // A plain Uint8Array view: msgpack returns binary values as sub-views of its input, and
      // sub-views of a Buffer (what ioredis hands us) would come back as Buffers.
      const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 1, bytes.byteLength - 1);
      const body = this.decoder.decode(view);
      if (bytes[0] === RECORD_TAG) return { kind: 'record', record: parseRecord(body) };
      if (bytes[0] === RELEASE_TAG) return { kind: 'release', notice: parseNotice(body) };
      throw new Error(`unknown record tag ${String(bytes[0])}`);
    } catch (err) {
      throw new CorruptRecordError(
        `The record stored for key "${key}" cannot be decoded (${errorText(err)})`,
        key,
        { cause: err },
      );
    }
  }

  /**
   * A 16-byte hash of a canonical encoding (object keys sorted) of `fingerprint`.
   * @throws SerializationError when the fingerprint holds something that cannot be encoded.
   */
  fingerprint(fingerprint: unknown, key: string): Uint8Array {
    let bytes: Uint8Array;
    try {
      // Nested containers are encoded with sorted keys too, so no part depends on key order.
      const canonical = isPlainWire(fingerprint, 0)
        ? fingerprint
        : this.toWire(fingerprint, 'fingerprint', this.walk(this.canonicalEncoder));
      bytes = this.canonicalEncoder.encode(canonical);
    } catch (err) {
      throw asSerializationError(err, key);
    }
    return createHash('sha256').update(bytes).digest().subarray(0, 16);
  }

  /**
   * {@link toWire} with whatever the value itself throws (a getter, a `Proxy` trap) turned into
   * a `SerializationError`: an unencodable outcome is one error, never the value's own.
   */
  private wire(value: unknown, path: Path, encoder: Encoder): unknown {
    // Most outcomes are JSON-like: msgpack encodes them as they are, after one check without
    // copies, path strings or an ancestor set. Anything else takes the full walk.
    if (isPlainWire(value, 0)) return value;
    try {
      return this.toWire(value, path, this.walk(encoder));
    } catch (err) {
      throw asSerializationError(err);
    }
  }

  private walk(encoder = this.encoder): Walk {
    return { ancestors: new Set(), encoder };
  }

  private frame(tag: number, body: unknown, maxBytes = this.maxRecordBytes): Uint8Array {
    let encoded: Uint8Array;
    try {
      // A view of the encoder's own buffer, valid until its next use: copied into `framed` below.
      encoded = this.encoder.encodeSharedRef(body);
    } catch (err) {
      throw asSerializationError(err);
    }
    if (encoded.byteLength + 1 > maxBytes) {
      throw new RecordTooLargeError(encoded.byteLength + 1, maxBytes);
    }
    // ioredis stores a Uint8Array as the text "1,2,3"; a Buffer over the same memory is sent as bytes.
    const framed = Buffer.allocUnsafe(encoded.byteLength + 1);
    framed[0] = tag;
    framed.set(encoded, 1);
    return framed;
  }

  /**
   * Rewrites a value into what plain msgpack encodes without loss: `undefined`, `Map`, `Set`,
   * `BigInt`, `Buffer` and errors become extension values; plain objects and arrays are
   * copied only when something inside them changed. Rejects what cannot round-trip.
   */
  private toWire(value: unknown, path: Path, walk: Walk): unknown {
    switch (typeof value) {
      case 'undefined':
        return UNDEFINED_MARKER;
      case 'string':
        if (!isWellFormed(value)) {
          // msgpack writes long strings through TextEncoder, which replaces a lone surrogate:
          // the replay would differ from what the first caller got.
          throw new SerializationError(`Cannot store a string with a lone surrogate (at ${path})`);
        }
        return value;
      case 'number':
      case 'boolean':
        return value;
      case 'bigint':
        return new ExtData(Ext.BIGINT, Buffer.from(value.toString(), 'latin1'));
      case 'function':
      case 'symbol':
        throw new SerializationError(`Cannot store a ${typeof value} (at ${path})`);
    }
    if (value === null) return value;
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? INVALID_DATE_MARKER : value;
    const object = value as object;
    if (walk.ancestors.has(object)) {
      throw new SerializationError(`Cannot store a circular structure (at ${path})`);
    }
    if (walk.ancestors.size >= MAX_NESTING) {
      throw new SerializationError(
        `Cannot store a value nested more than ${MAX_NESTING} levels deep (at ${path.slice(0, 200)}…)`,
      );
    }
    walk.ancestors.add(object);
    try {
      return this.objectToWire(object, path, walk);
    } finally {
      walk.ancestors.delete(object);
    }
  }

  private objectToWire(object: object, path: Path, walk: Walk): unknown {
    if (Array.isArray(object)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < object.length; i++) {
        const item: unknown = object[i];
        const wire = this.toWire(item, `${path}[${i}]`, walk);
        if (wire !== item) {
          copy ??= object.slice();
          copy[i] = wire;
        }
      }
      return copy ?? object;
    }
    if (Buffer.isBuffer(object)) return new ExtData(Ext.BUFFER, object);
    if (object instanceof Uint8Array) return object;
    if (ArrayBuffer.isView(object)) {
      throw new SerializationError(
        `Cannot store a ${object.constructor.name}; use a Uint8Array or Buffer (at ${path})`,
      );
    }
    if (object instanceof Map) {
      const entries: unknown[] = [];
      let i = 0;
      for (const [k, v] of object) {
        entries.push([
          this.toWire(k, `${path}<key ${i}>`, walk),
          this.toWire(v, `${path}<value ${i}>`, walk),
        ]);
        i++;
      }
      return new ExtData(Ext.MAP, walk.encoder.encode(entries));
    }
    if (object instanceof Set) {
      const items: unknown[] = [];
      let i = 0;
      for (const item of object) items.push(this.toWire(item, `${path}<item ${i++}>`, walk));
      return new ExtData(Ext.SET, walk.encoder.encode(items));
    }
    if (object instanceof Error) return this.errorToWire(object, path, walk);
    let copy: Record<string, unknown> | undefined;
    for (const name of Object.keys(object)) {
      if (name === '__proto__') {
        throw new SerializationError(`Cannot store an own property named __proto__ (at ${path})`);
      }
      if (!isWellFormed(name)) {
        throw new SerializationError(
          `Cannot store a property name with a lone surrogate (at ${path})`,
        );
      }
      const item: unknown = (object as Record<string, unknown>)[name];
      const wire = this.toWire(item, `${path}.${name}`, walk);
      if (wire !== item) {
        copy ??= { ...object };
        copy[name] = wire;
      }
    }
    return copy ?? object;
  }

  private errorToWire(error: Error, path: Path, walk: Walk): ExtData {
    const registered = this.registry.get(error.constructor.name) === error.constructor;
    const props: Record<string, unknown> = {};
    for (const name of Object.keys(error)) {
      if (name === 'stack' || name === 'message') continue;
      if (name === '__proto__') {
        throw new SerializationError(`Cannot store an own property named __proto__ (at ${path})`);
      }
      props[name] = this.toWire(
        (error as unknown as Record<string, unknown>)[name],
        `${path}.${name}`,
        walk,
      );
    }
    const code: unknown = (error as { code?: unknown }).code;
    const hasCode = code !== undefined && !Object.hasOwn(props, 'code');
    const hasCause = 'cause' in error;
    const wire = [
      registered ? error.constructor.name : null,
      String(error.name),
      String(error.message),
      props,
      hasCode ? this.toWire(code, `${path}.code`, walk) : UNDEFINED_MARKER,
      hasCause ? [this.toWire(error.cause, `${path}.cause`, walk)] : null,
    ];
    return new ExtData(Ext.ERROR, walk.encoder.encode(wire));
  }

  private decodeExt(type: number, data: Uint8Array): unknown {
    switch (type) {
      case Ext.UNDEFINED:
        return undefined;
      case Ext.INVALID_DATE:
        return new Date(Number.NaN);
      case Ext.BIGINT: {
        const text = Buffer.from(data).toString('latin1');
        if (!/^-?\d+$/.test(text)) throw new Error('malformed bigint');
        return BigInt(text);
      }
      case Ext.BUFFER:
        return Buffer.from(data);
      case Ext.MAP: {
        const entries = this.decoder.decode(data);
        if (!Array.isArray(entries)) throw new Error('malformed map');
        return new Map(
          entries.map((entry: unknown) => {
            if (!Array.isArray(entry) || entry.length !== 2) throw new Error('malformed map entry');
            return entry as [unknown, unknown];
          }),
        );
      }
      case Ext.SET: {
        const items = this.decoder.decode(data);
        if (!Array.isArray(items)) throw new Error('malformed set');
        return new Set(items);
      }
      case Ext.ERROR:
        return this.rebuildError(this.decoder.decode(data));
      default:
        throw new Error(`unknown extension type ${type}`);
    }
  }

  /** Rebuilds an error only from the registry; the stored bytes never name code to run. */
  private rebuildError(wire: unknown): Error {
    if (!Array.isArray(wire) || wire.length !== 6) throw new Error('malformed error');
    const [registeredName, name, message, props, code, cause] = wire as unknown[];
    if (typeof name !== 'string' || typeof message !== 'string' || !isPlainObject(props)) {
      throw new Error('malformed error');
    }
    const cls = typeof registeredName === 'string' ? this.registry.get(registeredName) : undefined;
    const error: Error = Object.create((cls ?? ReplayedError).prototype);
    defineHidden(error, 'message', message);
    if (cls === undefined || error.name !== name) defineHidden(error, 'name', name);
    Error.captureStackTrace(error, RecordCodec.prototype.decode);
    for (const [prop, value] of Object.entries(props)) {
      Object.defineProperty(error, prop, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    if (code !== undefined) defineHidden(error, 'code', code);
    if (cause !== null) {
      if (!Array.isArray(cause) || cause.length !== 1) throw new Error('malformed error cause');
      defineHidden(error, 'cause', cause[0]);
    }
    return error;
  }
}

/**
 * True when `value` is made only of what msgpack encodes exactly as {@link RecordCodec.toWire}
 * would leave it: well-formed strings, numbers, booleans, null, valid Dates, plain Uint8Arrays,
 * and arrays and plain objects of those, nested less than {@link MAX_NESTING} deep (a cycle
 * fails that bound). False for anything else, a getter that throws included: the full walk
 * then rewrites the value or names what cannot be stored, and where.
 */
function isPlainWire(value: unknown, depth: number): boolean {
  try {
    return isPlainPart(value, depth);
  } catch {
    return false;
  }
}

function isPlainPart(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value);
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_NESTING) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainPart(value[i], depth + 1)) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const object = value as Record<string, unknown>;
    for (const name in object) {
      if (!Object.hasOwn(object, name)) continue;
      if (name === '__proto__' || !isWellFormed(name)) return false;
      if (!isPlainPart(object[name], depth + 1)) return false;
    }
    return true;
  }
  if (proto === Date.prototype) return !Number.isNaN((value as Date).getTime());
  return proto === Uint8Array.prototype;
}

function parseRecord(body: unknown): StoredRecord {
  if (!Array.isArray(body) || body.length !== 5) throw new Error('malformed record');
  const [status, payload, fingerprint, startedAt, completedAt] = body as unknown[];
  if (
    (status !== 0 && status !== 1) ||
    !isFingerprint(fingerprint) ||
    typeof startedAt !== 'number' ||
    typeof completedAt !== 'number'
  ) {
    throw new Error('malformed record');
  }
  const outcome: Outcome =
    status === 0 ? { ok: true, value: payload } : { ok: false, error: payload };
  return { outcome, fingerprint, startedAt, completedAt };
}

function parseNotice(body: unknown): ReleaseNotice {
  if (!Array.isArray(body) || body.length !== 2) throw new Error('malformed notice');
  const [fingerprint, carried] = body as unknown[];
  if (!isFingerprint(fingerprint)) throw new Error('malformed notice');
  if (carried === null) return { fingerprint, outcome: null };
  if (!Array.isArray(carried) || carried.length !== 1) throw new Error('malformed notice');
  return { fingerprint, outcome: { ok: false, error: carried[0] } };
}

function isFingerprint(value: unknown): value is Uint8Array | null {
  return value === null || (value instanceof Uint8Array && value.byteLength === 16);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function defineHidden(target: object, name: string, value: unknown): void {
  Object.defineProperty(target, name, {
    value,
    enumerable: false,
    writable: true,
    configurable: true,
  });
}

function asSerializationError(err: unknown, key?: string): SerializationError {
  if (err instanceof SerializationError) return err;
  return new SerializationError(`Cannot encode the outcome (${errorText(err)})`, key, {
    cause: err,
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The lease duration a renewal notice announces, or undefined when `bytes` is another message.
 * Waiters read it without the decoder: it is the only message they handle while still waiting.
 */
export function renewedLeaseMs(bytes: Uint8Array): number | undefined {
  if (bytes[0] !== RENEWAL_TAG) return undefined;
  try {
    const leaseMs: unknown = new Decoder().decode(bytes.subarray(1));
    return typeof leaseMs === 'number' && leaseMs > 0 ? leaseMs : undefined;
  } catch {
    return undefined;
  }
}

/** True when two fingerprint hashes (or their absence) are equal. */
export function sameFingerprint(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return Buffer.compare(a, b) === 0;
}
