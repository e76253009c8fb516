/**
 * The spans Inkwell makes: one per command (continuing the caller's W3C `traceparent`), one per stage attempt
 * (continuing the trace of the blog's `create`, kept in its snapshot), and one per provider call inside it.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';

const tracer = trace.getTracer('inkwell');

type Carrier = { traceparent?: string };
const getter = {
  get: (c: Carrier, key: string) => (key === 'traceparent' ? c.traceparent : undefined),
  keys: () => ['traceparent'],
};

/** The W3C `traceparent` of the active span, if one is recording. */
export function currentTraceparent(): string | undefined {
  const carrier: Carrier = {};
  propagation.inject(context.active(), carrier, { set: (c, _k, v) => (c.traceparent = v) });
  return carrier.traceparent;
}

async function inSpan<T>(
  span: Span,
  run: () => Promise<T>,
  onError?: (err: unknown) => Record<string, string>,
): Promise<T> {
  try {
    const result = await context.with(trace.setSpan(context.active(), span), run);
    span.setStatus({ code: SpanStatusCode.OK });
    return result;
  } catch (err) {
    span.setAttributes(onError?.(err) ?? {});
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    span.end();
  }
}

/** Runs a command in its span, child of `traceparent` when the caller sent one. */
export function inCommandSpan<T>(name: string, traceparent: string | undefined, run: () => Promise<T>): Promise<T> {
  const parent = traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }, getter) : ROOT_CONTEXT;
  const span = tracer.startSpan(
    `command ${name}`,
    { kind: SpanKind.SERVER, attributes: { 'inkwell.command': name } },
    parent,
  );
  return context.with(trace.setSpan(parent, span), () =>
    inSpan(span, run, (err) => ({ 'error.code': (err as { code?: string }).code ?? 'INTERNAL' })),
  );
}

/** What a stage attempt's span records. */
export interface StageAttempt {
  blogId: string;
  instanceId: string;
  stage: string;
  attempt: number;
  traceparent?: string;
}

/** Runs a stage attempt in its span, in the trace of the blog's `create`. */
export function inStageSpan<T>(a: StageAttempt, run: () => Promise<T>): Promise<T> {
  const parent = a.traceparent
    ? propagation.extract(ROOT_CONTEXT, { traceparent: a.traceparent }, getter)
    : ROOT_CONTEXT;
  const span = tracer.startSpan(
    `stage ${a.stage}`,
    { attributes: { 'blog.id': a.blogId, 'store.id': a.instanceId, stage: a.stage, attempt: a.attempt } },
    parent,
  );
  return context.with(trace.setSpan(parent, span), () =>
    inSpan(
      span,
      async () => {
        const result = await run();
        span.setAttribute('outcome', 'ok');
        return result;
      },
      (err) => ({ outcome: 'error', 'error.code': (err as { code?: string }).code ?? 'INTERNAL' }),
    ),
  );
}

/** `port` with every method call in a child span named `<portName>.<method>`. */
export function tracePort<T extends object>(portName: string, port: T): T {
  return new Proxy(port, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]) =>
        inSpan(tracer.startSpan(`${portName}.${key}`, { kind: SpanKind.CLIENT }), () =>
          Promise.resolve(value.apply(target, args) as unknown),
        );
    },
  });
}

/** The stage ports with a span around each call. */
export function traceProviders<P extends { writer: object; images: object; publisher: object }>(p: P): P {
  return {
    ...p,
    writer: tracePort('writer', p.writer),
    images: tracePort('images', p.images),
    publisher: tracePort('publisher', p.publisher),
  };
}
