import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../../core/errors.js';

/**
 * Every name the PostgreSQL store builds — the table, its index, the advisory lock of its DDL,
 * a row's primary key and a key's notification channel — comes from this module.
 */

/** An unquoted SQL identifier we accept: letters, digits, `_`; at most 48 characters. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/**
 * Checks a table or schema name and returns it double-quoted. Names are validated (not just
 * quoted) so a name from configuration can never carry SQL, and so the derived index name stays
 * within PostgreSQL's 63-byte limit.
 */
export function quoteIdentifier(option: string, name: unknown): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new InvalidOptionError(
      option,
      'an SQL identifier (a letter or _, then letters, digits or _; at most 48 characters)',
      name,
    );
  }
  return `"${name}"`;
}

/** The names of one store's table. */
export interface TableNames {
  /** `"schema"."table"`, or `"table"` (found through `search_path`) without a schema. */
  readonly table: string;
  /** The schema to create, quoted; undefined when none was given. */
  readonly schema: string | undefined;
  /** The index on `expires_at`, unqualified (an index lives in its table's schema). */
  readonly expiryIndex: string;
  /** Distinguishes this table in channel names and the DDL lock: `schema.table`. */
  readonly identity: string;
}

export function tableNames(table: unknown, schema: unknown): TableNames {
  const quotedTable = quoteIdentifier('table', table);
  const quotedSchema = schema === undefined ? undefined : quoteIdentifier('schema', schema);
  return {
    table: quotedSchema === undefined ? quotedTable : `${quotedSchema}.${quotedTable}`,
    schema: quotedSchema,
    expiryIndex: `"${table as string}_expires_at_idx"`,
    identity: `${(schema as string | undefined) ?? ''}.${table as string}`,
  };
}

/**
 * A row's primary key: SHA-256 of the record key. Record keys run to several KiB (1,024
 * characters, escaped, in UTF-8), past what a btree index entry holds; the hash always fits.
 * In SQL: `sha256(convert_to(key, 'UTF8'))`.
 */
export function rowIdOf(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The channel a key's completions, releases and renewals are notified on: `ie_` and 40 hex
 * digits of a hash of the table and the key (a channel is an identifier: 63 bytes at most).
 */
export function channelOf(identity: string, key: string): string {
  const digest = createHash('sha1').update(identity).update('\0').update(key, 'utf8').digest('hex');
  return `ie_${digest}`;
}

/** A 64-bit advisory lock key for the table's DDL, from its identity. */
export function ddlLockOf(identity: string): string {
  const digest = createHash('sha256').update(`idempotent-executor:ddl:${identity}`).digest();
  return digest.readBigInt64BE(0).toString();
}
