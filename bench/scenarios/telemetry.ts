import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { IdempotentExecutor, MemoryStore } from 'idempotent-executor';
import { type Contender, compare } from '../lib/compare.js';
import { type BenchContext, payload } from '../lib/context.js';
import type { Results, ThroughputRow } from '../lib/results.js';

/** Exports nothing: the cost measured is the instrumentation's and the SDK's, not a network's. */
class DiscardingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

/** A reader that is never collected: instruments aggregate, nothing is exported. */
class IdleReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/**
 * OpenTelemetry's cost on the executor's own JavaScript (MemoryStore, concurrency 64): fresh runs
 * and replays with no provider registered (the API's no-op) beside the same with the SDK
 * registered as an application would (every span sampled and batched to an exporter that drops
 * them, metrics aggregated, AsyncLocalStorage context). The no-provider figures are measured
 * first: once an SDK has been registered in a process, the call sites it reached stay
 * polymorphic, which an application without an SDK never sees.
 */
export async function telemetry(context_: BenchContext, results: Results): Promise<void> {
  results.inProcess.push(...(await measure(context_, false)));
  results.inProcess.push(...(await measure(context_, true)));
}

async function measure(context_: BenchContext, registered: boolean): Promise<ThroughputRow[]> {
  const unregister = registered ? registerSdk() : async () => {};
  const executor = new IdempotentExecutor({ store: new MemoryStore() });
  const label = registered ? 'OpenTelemetry SDK registered' : 'OpenTelemetry: no provider';
  const replayKeys = 5_000;
  try {
    for (let i = 0; i < replayKeys; i++) await executor.run(`r-${i}`, async () => payload('r'));
    const contenders: Contender[] = [
      {
        name: `${label}: fresh runs`,
        operation: (round, i) => {
          const key = `f${round}-${i}`;
          return executor.run(key, async () => payload(key));
        },
      },
      {
        name: `${label}: replays`,
        operation: (_round, i) => executor.run(`r-${i % replayKeys}`, async () => payload('never')),
      },
    ];
    return await compare(context_, contenders, {
      label: 'telemetry',
      concurrencies: [64],
      runs: () => (context_.quick ? 2_000 : 100_000),
      rounds: context_.quick ? 1 : 3,
      warmup: context_.quick ? 500 : 20_000,
    });
  } finally {
    await executor.close();
    await unregister();
  }
}

function registerSdk(): () => Promise<void> {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(new DiscardingExporter())],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  metrics.setGlobalMeterProvider(meterProvider);
  return async () => {
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    trace.disable();
    metrics.disable();
    context.disable();
  };
}
