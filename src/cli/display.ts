import { inspect } from 'node:util';

/**
 * A JSON-safe copy of a stored value or error. What JSON has no word for is tagged, never
 * dropped: `{ "$bigint": "12" }`, `{ "$bytes": "<base64>" }`, `{ "$map": [[k, v]] }`,
 * `{ "$set": [...] }`, `{ "$undefined": true }`, and errors as
 * `{ "$error": { name, message, code, ...properties, cause } }`.
 */
export function toJsonSafe(value: unknown, depth = 0): unknown {
  if (depth > 100) return '[too deep]';
  switch (typeof value) {
    case 'undefined':
      return { $undefined: true };
    case 'bigint':
      return { $bigint: value.toString() };
    case 'number':
      return Number.isFinite(value) ? value : { $number: String(value) };
    case 'string':
    case 'boolean':
      return value;
    case 'function':
    case 'symbol':
      return String(value);
  }
  if (value === null) return null;
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? { $date: 'Invalid Date' } : value.toISOString();
  }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64') };
  if (Array.isArray(value)) return value.map((item) => toJsonSafe(item, depth + 1));
  if (value instanceof Map) {
    return {
      $map: [...value].map(([k, v]) => [toJsonSafe(k, depth + 1), toJsonSafe(v, depth + 1)]),
    };
  }
  if (value instanceof Set) return { $set: [...value].map((item) => toJsonSafe(item, depth + 1)) };
  if (value instanceof Error) return { $error: errorFields(value, depth) };
  const copy: Record<string, unknown> = {};
  for (const [name, item] of Object.entries(value as object))
    copy[name] = toJsonSafe(item, depth + 1);
  return copy;
}

function errorFields(error: Error, depth: number): Record<string, unknown> {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  const code: unknown = (error as { code?: unknown }).code;
  if (code !== undefined) fields.code = toJsonSafe(code, depth + 1);
  for (const [name, item] of Object.entries(error)) {
    if (name !== 'stack') fields[name] = toJsonSafe(item, depth + 1);
  }
  if ('cause' in error) fields.cause = toJsonSafe(error.cause, depth + 1);
  return fields;
}

/**
 * A stored value or error for people. Errors show their name, message, code and properties but
 * no stack: the stack of a rebuilt error would point into this tool, not where it was thrown.
 */
export function formatValue(value: unknown, color: boolean): string {
  const options = { depth: 8, colors: color, breakLength: 80, maxStringLength: 2_000 };
  if (!(value instanceof Error)) return inspect(value, options);
  const { name, message, ...details } = errorFields(value, 0);
  const head = `${String(name)}: ${String(message)}`;
  return Object.keys(details).length === 0 ? head : `${head}\n${inspect(details, options)}`;
}

/** One line of an error for the watch view: `Name: message (CODE)`. */
export function errorSummary(error: unknown): string {
  if (!(error instanceof Error)) return formatValue(error, false);
  const code: unknown = (error as { code?: unknown }).code;
  return `${error.name}: ${error.message}${code === undefined ? '' : ` (${String(code)})`}`;
}

/** `1h 2m`, `3.4 s`, `120 ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const totalMinutes = Math.floor(ms / 60_000);
  const hours = Math.floor(totalMinutes / 60);
  const days = Math.floor(hours / 24);
  if (days > 0) return `${days}d ${hours % 24}h`;
  if (hours > 0) return `${hours}h ${totalMinutes % 60}m`;
  return `${totalMinutes}m ${Math.floor((ms % 60_000) / 1_000)}s`;
}

/** `12.3 KiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let size = bytes / 1024;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${size.toFixed(1)} ${units[unit]}`;
}

/** Aligned `label  value` lines. */
export function table(rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows
    .map(([label, text]) => {
      const [first = '', ...rest] = text.split('\n');
      const pad = ' '.repeat(width + 2);
      return [`${label.padEnd(width)}  ${first}`, ...rest.map((line) => pad + line)].join('\n');
    })
    .join('\n');
}
