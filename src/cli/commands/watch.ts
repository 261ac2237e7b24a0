import type { Cluster, Redis } from 'ioredis';
import { recordKeyOf } from '../../core/keys.js';
import { renewedLeaseMs } from '../../core/record-codec.js';
import { ClusterSubscriber } from '../../store/redis/cluster-subscriber.js';
import { channelOf } from '../../store/redis/key-layout.js';
import { isLeaseToken, LEASE_TOKEN_LENGTH } from '../../store/store.js';
import {
  type CommandContext,
  ExitCode,
  type ExitCodeValue,
  type Io,
  printJson,
  printLine,
  useColor,
} from '../context.js';
import { errorSummary, formatDuration, formatValue, toJsonSafe } from '../display.js';
import { codec } from '../entry.js';
import {
  channelPattern,
  idempotencyKeyOf,
  idempotencyKeyOfChannel,
  recordKeyPattern,
} from '../key-names.js';
import { ScanBudget, scanKeys } from '../scan.js';

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
 * `watch`: listens to every key channel of the namespace and reports each message: the
 * completion record, a release notice, a lease renewal. Takeovers publish nothing of their own;
 * the watch infers one when a lease it saw renewed is followed by a renewal under another token,
 * or by a record whose execution started after that renewal. Runs until `stop` aborts.
 *
 * On one server: PSUBSCRIBE to the namespace's channel pattern. On a Redis Cluster the executor
 * publishes with sharded pub/sub, which has no pattern form: see {@link watchCluster}.
 */
export async function watchCommand(
  context: CommandContext,
  stop: AbortSignal,
): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  const view = new WatchView(io, args.json);
  if (connection.cluster) return watchCluster(context, stop, view);
  const reader = connection.client as Redis;
  // Reconnects on its own (unlike the tool's other connections): a watch outlives blips.
  const subscriber = reader.duplicate({
    lazyConnect: true,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
    commandTimeout: undefined,
  });
  const events = new EventReader(args.namespace, reader, view);
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
    events.push(key, message);
  });

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
  await stopped(stop);
  subscriber.disconnect();
  await events.drained();
  view.finish();
  return ExitCode.OK;
}

/** A channel the cluster watch is subscribed to (or subscribing to). */
interface TrackedChannel {
  readonly key: string;
  readonly redisKey: string;
  readonly subscribedAt: number;
  /** When the last message arrived on it; 0 before the first. */
  heardAt: number;
}

/**
 * `watch` on a Redis Cluster. The executor publishes on `<record key>:done` with SPUBLISH, and
 * Redis has no pattern form of SSUBSCRIBE, so the channels to listen to are found: every
 * `--rescan-ms` a bounded SCAN of every master (as `list` walks) finds the namespace's record
 * keys, a 33-byte GETRANGE of each tells a running lease (a 32-character token) from a record,
 * and each running key's channel is SSUBSCRIBEd on the master serving its slot (the store's own
 * {@link ClusterSubscriber}, which follows the slot through failovers and migrations). Right
 * after each subscription the key is read again: an execution that finished between the scan
 * and the subscription is reported from its record. A channel is dropped once its key is no
 * longer running and nothing was heard on it for a whole interval.
 *
 * What this cannot see: an execution that starts and finishes between two scans publishes on a
 * channel nobody listens to yet (docs/cli.md says so).
 */
async function watchCluster(
  context: CommandContext,
  stop: AbortSignal,
  view: WatchView,
): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  const cluster = connection.client as Cluster;
  // Every completion that could also arrive as a message is reported once.
  const events = new EventReader(args.namespace, cluster, view, true);
  const tracked = new Map<string, TrackedChannel>();
  let resyncShown = false;
  const shards = new ClusterSubscriber(
    cluster,
    { commandTimeout: args.timeoutMs },
    {
      message: (channel, message) => {
        const channelState = tracked.get(channel);
        if (channelState === undefined) return;
        channelState.heardAt = Date.now();
        events.push(channelState.key, message);
      },
      // Told once per channel after a failover or a reconnection: one line per burst.
      resync: () => {
        if (resyncShown) return;
        resyncShown = true;
        setImmediate(() => {
          resyncShown = false;
          view.show({ event: 'reconnected' });
        });
      },
    },
  );
  const pattern = recordKeyPattern(args.namespace);

  /** The running keys of the namespace (channel -> key, record key), by one walk of every master. */
  async function findRunning(): Promise<{
    running: Map<string, { key: string; redisKey: string }>;
    complete: boolean;
  }> {
    const budget = new ScanBudget(args.scanLimit);
    const running = new Map<string, { key: string; redisKey: string }>();
    for (const node of connection.masters()) {
      for await (const batch of scanKeys(node, pattern, budget, 'string')) {
        const found: { key: string; redisKey: string }[] = [];
        for (const redisKey of batch) {
          const key = idempotencyKeyOf(args.namespace, redisKey);
          if (key !== undefined) found.push({ key, redisKey });
        }
        if (found.length === 0) continue;
        // One byte past a token's length: a longer record is never taken for a token.
        const pipeline = node.pipeline();
        for (const { redisKey } of found) pipeline.getrangeBuffer(redisKey, 0, LEASE_TOKEN_LENGTH);
        const replies = (await pipeline.exec()) ?? [];
        found.forEach((entry, i) => {
          const [error, head] = replies[i] ?? [null, null];
          if (error === null && Buffer.isBuffer(head) && isLeaseToken(head)) {
            running.set(channelOf(entry.redisKey), entry);
          }
        });
      }
    }
    return { running, complete: budget.complete };
  }

  async function subscribe(channel: string, key: string, redisKey: string): Promise<void> {
    const channelState: TrackedChannel = { key, redisKey, subscribedAt: Date.now(), heardAt: 0 };
    tracked.set(channel, channelState);
    try {
      await shards.subscribe(channel);
    } catch {
      // The next scan tries again.
      if (tracked.get(channel) === channelState) tracked.delete(channel);
      return;
    }
    // It was running at the scan: a record now is a completion whose message may have been
    // published before the subscription took (reported once, whichever comes first).
    const raw = await cluster.getBuffer(redisKey).catch(() => null);
    if (raw !== null && !isLeaseToken(raw) && channelState.heardAt === 0) events.push(key, raw);
  }

  async function scanOnce(): Promise<void> {
    const { running, complete } = await findRunning();
    const subscriptions: Promise<void>[] = [];
    for (const [channel, { key, redisKey }] of running) {
      if (!tracked.has(channel)) subscriptions.push(subscribe(channel, key, redisKey));
    }
    await Promise.all(subscriptions);
    // A walk cut short by --scan-limit did not look everywhere: drop nothing on its word.
    if (!complete) return;
    const quietSince = Date.now() - args.rescanMs;
    for (const [channel, channelState] of tracked) {
      if (running.has(channel)) continue;
      if (channelState.subscribedAt > quietSince || channelState.heardAt > quietSince) continue;
      tracked.delete(channel);
      shards.unsubscribe(channel);
      events.forget(channelState.key);
    }
  }

  try {
    await scanOnce();
  } catch (err) {
    await shards.close(args.timeoutMs);
    throw err;
  }
  io.stderr.write(
    `Watching namespace "${args.namespace}" on ${connection.displayUrl} (Redis Cluster: ` +
      `running executions found every ${args.rescanMs} ms; Ctrl-C to stop)\n`,
  );
  view.start();
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(() => {
      // A failed walk (a master unreachable) is tried again at the next interval.
      round = scanOnce()
        .catch(() => undefined)
        .then(() => {
          if (!stop.aborted) schedule();
        });
    }, args.rescanMs);
  };
  schedule();
  await stopped(stop);
  clearTimeout(timer);
  await round;
  await shards.close(args.timeoutMs);
  await events.drained();
  view.finish();
  return ExitCode.OK;
}

/**
 * Turns the messages of key channels into events, in arrival order (a renewal waits for a read
 * of the key), remembering the leases seen renewed to infer takeovers.
 */
class EventReader {
  private readonly seen = new Map<string, SeenLease>();
  /** With `dedupe`: the last completion reported per key (`startedAt/completedAt`). */
  private readonly reported = new Map<string, string>();
  private queue = Promise.resolve();

  constructor(
    private readonly namespace: string,
    private readonly reader: Redis | Cluster,
    private readonly view: WatchView,
    private readonly dedupe = false,
  ) {}

  push(key: string, message: Buffer): void {
    this.queue = this.queue.then(() => this.handle(key, message)).catch(() => undefined);
  }

  /** Forgets what was reported of `key` (its channel is no longer listened to). */
  forget(key: string): void {
    this.reported.delete(key);
  }

  drained(): Promise<void> {
    return this.queue;
  }

  private async handle(key: string, message: Buffer): Promise<void> {
    const { seen, view } = this;
    const leaseMs = renewedLeaseMs(message);
    if (leaseMs !== undefined) {
      const raw = await this.reader.getBuffer(recordKeyOf(this.namespace, key)).catch(() => null);
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
    if (decoded.kind === 'release') {
      seen.delete(key);
      const outcome = decoded.notice.outcome;
      view.show({
        event: 'released',
        key,
        error: outcome === null || outcome.ok ? null : outcome.error,
      });
      return;
    }
    const { record } = decoded;
    if (this.dedupe) {
      const id = `${record.startedAt}/${record.completedAt}`;
      if (this.reported.get(key) === id) return;
      this.reported.set(key, id);
    }
    const before = seen.get(key);
    seen.delete(key);
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
}

function stopped(stop: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (stop.aborted) resolve();
    else stop.addEventListener('abort', () => resolve(), { once: true });
  });
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
