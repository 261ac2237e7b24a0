// A process calling IdempotentExecutor on a Redis Cluster, on command. Started by the cluster
// tests with `startWorker`. Reads JSON lines on stdin, prints JSON lines on stdout:
//   in:  { op: 'run', id, key, calls?, gate?, sleepMs?, fence? }  { op: 'open', gate }  { op: 'exit' }
//   out: { event: 'ready', pid }  { event: 'started', id, pid, token? }
//        { event: 'result', id, pid, ok: true, value } | { event: 'result', id, pid, ok: false, code, message }
import { createInterface } from 'node:readline';
import { Cluster } from 'ioredis';
import { IdempotentExecutor } from '../../../src/index.js';
import type { ClusterWorkerCommand, ClusterWorkerConfig, ClusterWorkerEvent } from './protocol.js';

const config = JSON.parse(process.argv[2] ?? '{}') as ClusterWorkerConfig;
const print = (event: ClusterWorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

const client = new Cluster([{ host: '127.0.0.1', port: config.port }]);
client.on('error', () => {});
const executor = new IdempotentExecutor({
  redis: client,
  namespace: config.namespace,
  ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
  ...(config.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: config.waitTimeoutMs }),
});

const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(name: string) {
  let entry = gates.get(name);
  if (entry === undefined) {
    let open = () => {};
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    entry = { promise, open };
    gates.set(name, entry);
  }
  return entry;
}

function run(command: Extract<ClusterWorkerCommand, { op: 'run' }>): void {
  for (let call = 0; call < (command.calls ?? 1); call++) {
    executor
      .run(command.key, async (ctx) => {
        const token = command.fence ? await ctx.fencingToken() : undefined;
        print({ event: 'started', id: command.id, pid: process.pid, ...(token ? { token } : {}) });
        if (command.gate !== undefined) await gate(command.gate).promise;
        if (command.sleepMs !== undefined) {
          await new Promise((resolve) => setTimeout(resolve, command.sleepMs));
        }
        return { by: process.pid, ...(token ? { token } : {}) };
      })
      .then(
        (value) => print({ event: 'result', id: command.id, pid: process.pid, ok: true, value }),
        (error: { code?: string; message?: string }) =>
          print({
            event: 'result',
            id: command.id,
            pid: process.pid,
            ok: false,
            code: error.code,
            message: String(error.message),
          }),
      );
  }
}

let exiting = false;
async function exit(): Promise<void> {
  if (exiting) return;
  exiting = true;
  setTimeout(() => process.exit(0), 3_000).unref();
  await executor.close();
  client.disconnect();
  process.exit(0);
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const command = JSON.parse(line) as ClusterWorkerCommand;
  if (command.op === 'run') run(command);
  else if (command.op === 'open') gate(command.gate).open();
  else void exit();
});
// The test process went away: do not outlive it.
input.on('close', () => void exit());

// Connect before saying ready, so the first command is not timed against the cluster handshake.
await executor.inspect('warm-up');
print({ event: 'ready', pid: process.pid });
