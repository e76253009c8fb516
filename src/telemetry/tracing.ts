/**
 * OpenTelemetry traces over OTLP/HTTP (JSON), on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The exporter and
 * the resource read the other standard variables themselves (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
 * headers, timeouts). Off, the API's no-op tracer is all the code ever touches.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Config } from '../config';
import type { Logger } from '../logger';

/** Tracing of this process: `shutdown` flushes the spans not yet sent. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/** Starts tracing when the configuration asks for it; the returned handle is a no-op otherwise. */
export function startTracing(config: Config, log: Logger): Tracing {
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return { shutdown: async () => undefined };
  const resource = resourceFromAttributes({
    'service.name': 'inkwell',
    'service.instance.id': config.INKWELL_NODE_ID,
  }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({ url: `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces` }),
        { scheduledDelayMillis: 1000 },
      ),
    ],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  log.info({ endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }, 'tracing: exporting spans over OTLP/HTTP');
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
