// The OpenTelemetry SDK as an application registers it, with in-memory exporters the tests read.
import { writeFileSync } from 'node:fs';
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncHooksContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export interface Otel {
  readonly spans: InMemorySpanExporter;
  /** Every data point of `name` whose attributes include `where`, after a collection. */
  points(name: string, where: Record<string, string>): Promise<DataPoint<unknown>[]>;
  shutdown(): Promise<void>;
}

/** Registers a tracer provider, a meter provider and the async-hooks context manager globally. */
export function registerOtel(): Otel {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(spans)],
  });
  const contextManager = new AsyncHooksContextManager().enable();
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(tracerProvider);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    async points(name, where) {
      metricExporter.reset();
      await reader.forceFlush();
      const found: DataPoint<unknown>[] = [];
      for (const resource of metricExporter.getMetrics()) {
        for (const scope of resource.scopeMetrics) {
          for (const metric of scope.metrics) {
            if (metric.descriptor.name !== name) continue;
            for (const point of metric.dataPoints as DataPoint<unknown>[]) {
              if (Object.entries(where).every(([k, v]) => point.attributes[k] === v)) {
                found.push(point);
              }
            }
          }
        }
      }
      return found;
    },
    async shutdown() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
      trace.disable();
      metrics.disable();
      context.disable();
    },
  };
}

/** The sum of a counter's data points. */
export function total(points: DataPoint<unknown>[]): number {
  return points.reduce((sum, point) => sum + (point.value as number), 0);
}

/** The count and sum of a histogram's data points. */
export function histogram(points: DataPoint<unknown>[]): { count: number; sum: number } {
  let count = 0;
  let sum = 0;
  for (const point of points) {
    const value = point.value as Histogram;
    count += value.count;
    sum += value.sum ?? 0;
  }
  return { count, sum };
}

const ms = (time: [number, number]) => time[0] * 1000 + time[1] / 1e6;

/** A span and its descendants as an indented text tree: attributes, events at their offsets. */
export function treeOf(all: readonly ReadableSpan[], root: ReadableSpan, indent = ''): string {
  const start = ms(root.startTime);
  const attributes = Object.entries(root.attributes)
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join(' ');
  const status = root.status.code === 2 ? ' ERROR' : '';
  const lines = [
    `${indent}${root.name} (${Math.round(ms(root.duration))} ms)${status} ${attributes}`.trimEnd(),
  ];
  for (const event of root.events) {
    const extra = Object.entries(event.attributes ?? {})
      .map(([name, value]) => ` ${name}=${JSON.stringify(value)}`)
      .join('');
    lines.push(`${indent}  @+${Math.round(ms(event.time) - start)} ms ${event.name}${extra}`);
  }
  const children = all
    .filter((span) => span.parentSpanContext?.spanId === root.spanContext().spanId)
    .sort((a, b) => ms(a.startTime) - ms(b.startTime));
  for (const child of children) lines.push(treeOf(all, child, `${indent}  `));
  return lines.join('\n');
}

/** Appends a captured tree to $OTEL_TREES_OUT when set (docs/observability.md shows them). */
export function keepTree(title: string, tree: string): void {
  const out = process.env.OTEL_TREES_OUT;
  if (out !== undefined) writeFileSync(out, `## ${title}\n${tree}\n\n`, { flag: 'a' });
}
