import type { Redis } from 'ioredis';
import { recordKeyOf } from '../../core/keys.js';
import { renewedLeaseMs } from '../../core/record-codec.js';
import { isLeaseToken } from '../../store/store.js';
import {
  type CommandContext,
  CommandError,
  ExitCode,
  type ExitCodeValue,
  type Io,
  printJson,
  printLine,
  useColor,
} from '../context.js';
import { errorSummary, formatDuration, formatValue, toJsonSafe } from '../display.js';
import { codec } from '../entry.js';
import { channelPattern, idempotencyKeyOfChannel } from '../key-names.js';

/** What the watch reports, one per message (or per takeover it infers). */
export type WatchEvent =
  | {
      readonly event: 'completed';
      readonly key: string;
      readonly ok: boolean;
      readonly startedAt: Date;
      readonly completedAt: Date;
      readonly value?: unknown;
      readonly error?: unknown;
    }
  | { readonly event: 'renewed'; readonly key: string; readonly leaseMs: number }
  | { readonly event: 'released'; readonly key: string; readonly error: unknown }
  | { readonly event: 'takeover'; readonly key: string; readonly previousLeaseSeenAt: Date }
  | { readonly event: 'unreadable'; readonly key: string; readonly reason: string }
  | { readonly event: 'reconnected' };

/** A lease the watch has seen renewed: the evidence a later completion or renewal is weighed by. */
interface SeenLease {
  readonly token: string | null;
  readonly seenAt: number;
}

/** Leases remembered at most; the oldest is dropped first (a takeover of it goes unreported). */
const MAX_TRACKED_LEASES = 10_000;

/**
 * `watch`: PSUBSCRIBE to every key channel of the namespace and report each message: the
 * completion record, a release notice, a lease renewal. Takeovers publish nothing of their own;
 * the watch infers one when a lease it saw renewed is followed by a renewal under another token,
 * or by a record whose execution started after that renewal. Runs until `stop` aborts.
 */
export async function watchCommand(
  context: CommandContext,
  stop: AbortSignal,
): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  if (connection.cluster) {
    throw new CommandError(
      'watch is not available on Redis Cluster: the executor publishes there with sharded ' +
        'pub/sub (SPUBLISH), which has no pattern subscription. inspect, forget, list and stats work.',
      ExitCode.FAILED,
      'UNSUPPORTED_ON_CLUSTER',
    );
  }
  const reader = connection.client as Redis;
  // Reconnects on its own (unlike the tool's other connections): a watch outlives blips.
  const subscriber = reader.duplicate({
    lazyConnect: true,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
    commandTimeout: undefined,
  });
  const view = new WatchView(io, args.json);
  const seen = new Map<string, SeenLease>();
  let queue = Promise.resolve();
  let ready = false;

  subscriber.on('error', () => {});
  subscriber.on('ready', () => {
    // ioredis resubscribes by itself; whatever was published while it was away is lost.
    if (ready) view.show({ event: 'reconnected' });
    ready = true;
  });
  subscriber.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
    const key = idempotencyKeyOfChannel(args.namespace, channel.toString());
    if (key === undefined) return;
    // In arrival order, though a renewal waits for a read of the key.
    queue = queue.then(() => handle(key, message)).catch(() => undefined);
  });

  async function handle(key: string, message: Buffer): Promise<void> {
    const leaseMs = renewedLeaseMs(message);
    if (leaseMs !== undefined) {
      const raw = await reader.getBuffer(recordKeyOf(args.namespace, key)).catch(() => null);
      const token = raw !== null && isLeaseToken(raw) ? raw.toString() : null;
      const before = seen.get(key);
      if (before?.token != null && token !== null && before.token !== token) {
        view.show({ event: 'takeover', key, previousLeaseSeenAt: new Date(before.seenAt) });
      }
      remember(seen, key, { token, seenAt: Date.now() });
      view.show({ event: 'renewed', key, leaseMs });
      return;
    }
    let decoded: ReturnType<typeof codec.decode>;
    try {
      decoded = codec.decode(message, key);
    } catch (err) {
      view.show({ event: 'unreadable', key, reason: (err as Error).message });
      return;
    }
    const before = seen.get(key);
    seen.delete(key);
    if (decoded.kind === 'release') {
      const outcome = decoded.notice.outcome;
      view.show({
        event: 'released',
        key,
        error: outcome === null || outcome.ok ? null : outcome.error,
      });
      return;
    }
    const { record } = decoded;
    // The lease seen renewed was alive at seenAt; an execution that started later is another one.
    if (before !== undefined && record.startedAt > before.seenAt) {
      view.show({ event: 'takeover', key, previousLeaseSeenAt: new Date(before.seenAt) });
    }
    view.show({
      event: 'completed',
      key,
      ok: record.outcome.ok,
      startedAt: new Date(record.startedAt),
      completedAt: new Date(record.completedAt),
      ...(record.outcome.ok ? { value: record.outcome.value } : { error: record.outcome.error }),
    });
  }

  try {
    await subscriber.connect();
    await subscriber.psubscribe(channelPattern(args.namespace));
  } catch (err) {
    subscriber.disconnect();
    throw err;
  }
  io.stderr.write(
    `Watching namespace "${args.namespace}" on ${connection.displayUrl} (Ctrl-C to stop)\n`,
  );
  view.start();
  await new Promise<void>((resolve) => {
    if (stop.aborted) resolve();
    else stop.addEventListener('abort', () => resolve(), { once: true });
  });
  subscriber.disconnect();
  await queue;
  view.finish();
  return ExitCode.OK;
}

function remember(seen: Map<string, SeenLease>, key: string, lease: SeenLease): void {
  seen.delete(key);
  seen.set(key, lease);
  if (seen.size > MAX_TRACKED_LEASES) {
    const oldest = seen.keys().next().value;
    if (oldest !== undefined) seen.delete(oldest);
  }
}

const COLORS = {
  completed: '\x1b[32m',
  failed: '\x1b[31m',
  renewed: '\x1b[2m',
  released: '\x1b[33m',
  takeover: '\x1b[35m',
  reset: '\x1b[0m',
} as const;

/**
 * Prints events: one JSON object per line with `--json`; on a terminal, coloured lines under a
 * running tally; otherwise (a pipe, a file) plain `name=value` lines.
 */
class WatchView {
  private readonly counts = { completed: 0, renewed: 0, released: 0, takeover: 0 };
  private readonly live: boolean;
  private readonly color: boolean;

  constructor(
    private readonly io: Io,
    private readonly json: boolean,
  ) {
    this.live = !json && io.stdout.isTTY === true;
    this.color = useColor(io);
  }

  start(): void {
    if (this.live) this.io.stdout.write(this.tally());
  }

  show(event: WatchEvent): void {
    if (event.event in this.counts) this.counts[event.event as keyof WatchView['counts']]++;
    const time = new Date();
    if (this.json) {
      printJson(this.io, jsonOf(time, event));
      return;
    }
    if (!this.live) {
      printLine(this.io, plainLine(time, event));
      return;
    }
    // Replace the tally line with the event, then write the tally again below it.
    this.io.stdout.write(`\r\x1b[K${this.liveLine(time, event)}\n${this.tally()}`);
  }

  finish(): void {
    const { completed, renewed, released, takeover } = this.counts;
    if (this.live) this.io.stdout.write('\r\x1b[K');
    this.io.stderr.write(
      `Stopped: ${completed} completed, ${renewed} renewed, ${released} released, ${takeover} takeovers\n`,
    );
  }

  private tally(): string {
    const { completed, renewed, released, takeover } = this.counts;
    return `${completed} completed · ${renewed} renewed · ${released} released · ${takeover} takeovers`;
  }

  private liveLine(time: Date, event: WatchEvent): string {
    const clock = time.toISOString().slice(11, 23);
    const paint = (color: string, text: string) =>
      this.color ? `${color}${text}${COLORS.reset}` : text;
    switch (event.event) {
      case 'completed': {
        const took = formatDuration(event.completedAt.getTime() - event.startedAt.getTime());
        return event.ok
          ? `${clock}  ${paint(COLORS.completed, 'completed')}  ${event.key}  ${took}  ${oneLine(formatValue(event.value, this.color))}`
          : `${clock}  ${paint(COLORS.failed, 'completed')}  ${event.key}  ${took}  ${errorSummary(event.error)}`;
      }
      case 'renewed':
        return `${clock}  ${paint(COLORS.renewed, 'renewed  ')}  ${event.key}  lease ${formatDuration(event.leaseMs)}`;
      case 'released':
        return `${clock}  ${paint(COLORS.released, 'released ')}  ${event.key}${event.error === null ? '' : `  ${errorSummary(event.error)}`}`;
      case 'takeover':
        return `${clock}  ${paint(COLORS.takeover, 'takeover ')}  ${event.key}  previous lease last seen ${event.previousLeaseSeenAt.toISOString().slice(11, 23)}`;
      case 'unreadable':
        return `${clock}  ${paint(COLORS.failed, 'unreadable')}  ${event.key}  ${event.reason}`;
      case 'reconnected':
        return `${clock}  reconnected: messages published meanwhile were missed`;
    }
  }
}

function jsonOf(time: Date, event: WatchEvent): Record<string, unknown> {
  const base = { time: time.toISOString() };
  switch (event.event) {
    case 'completed':
      return {
        ...base,
        event: 'completed',
        key: event.key,
        ok: event.ok,
        startedAt: event.startedAt.toISOString(),
        completedAt: event.completedAt.toISOString(),
        durationMs: event.completedAt.getTime() - event.startedAt.getTime(),
        ...(event.ok ? { value: toJsonSafe(event.value) } : { error: toJsonSafe(event.error) }),
      };
    case 'released':
      return { ...base, ...event, error: event.error === null ? null : toJsonSafe(event.error) };
    case 'takeover':
      return { ...base, ...event, previousLeaseSeenAt: event.previousLeaseSeenAt.toISOString() };
    default:
      return { ...base, ...event };
  }
}

/** `time=… event=completed key="order-1" ok=true durationMs=12`: greppable, no colour. */
function plainLine(time: Date, event: WatchEvent): string {
  const fields: Array<[string, unknown]> = [
    ['time', time.toISOString()],
    ['event', event.event],
  ];
  switch (event.event) {
    case 'completed':
      fields.push(
        ['key', event.key],
        ['ok', event.ok],
        ['durationMs', event.completedAt.getTime() - event.startedAt.getTime()],
      );
      if (!event.ok) fields.push(['error', errorSummary(event.error)]);
      break;
    case 'renewed':
      fields.push(['key', event.key], ['leaseMs', event.leaseMs]);
      break;
    case 'released':
      fields.push(['key', event.key]);
      if (event.error !== null) fields.push(['error', errorSummary(event.error)]);
      break;
    case 'takeover':
      fields.push(
        ['key', event.key],
        ['previousLeaseSeenAt', event.previousLeaseSeenAt.toISOString()],
      );
      break;
    case 'unreadable':
      fields.push(['key', event.key], ['reason', event.reason]);
      break;
    case 'reconnected':
      break;
  }
  return fields
    .map(([name, value]) =>
      typeof value === 'string' && (name === 'key' || /[\s"=]/.test(value))
        ? `${name}=${JSON.stringify(value)}`
        : `${name}=${String(value)}`,
    )
    .join(' ');
}

function oneLine(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}
