/**
 * The spans Inkwell makes: one per command (continuing the caller's W3C `traceparent`), one per stage attempt
 * (continuing the trace of the blog's `create`, kept in its snapshot), one per provider call inside it (with the
 * tokens it used), and one per command forwarded to its store's owner (whose command span continues it).
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

/**
 * Runs `send`, which forwards command `name` to `owner` (the process holding its store), in a client span: a child
 * of the caller's `traceparent` when there is one. `send` gets the `traceparent` to carry to the owner: this span's,
 * or the caller's when tracing is off here, so the owner's command span continues the same trace.
 */
export function inForwardSpan<T>(
  name: string,
  owner: string,
  traceparent: string | undefined,
  send: (traceparent: string | undefined) => Promise<T>,
): Promise<T> {
  const parent = traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }, getter) : ROOT_CONTEXT;
  const span = tracer.startSpan(
    `forward ${name}`,
    { kind: SpanKind.CLIENT, attributes: { 'inkwell.command': name, 'inkwell.owner': owner } },
    parent,
  );
  return context.with(trace.setSpan(parent, span), () =>
    inSpan(
      span,
      () => send(currentTraceparent() ?? traceparent),
      (err) => ({ 'error.code': (err as { code?: string }).code ?? 'INTERNAL' }),
    ),
  );
}

/** What a provider reports through a call's `onUsage` (text tokens, images). */
type Usage = { inputTokens?: number; outputTokens?: number; images?: number };
const USAGE_ATTRIBUTES = {
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  images: 'inkwell.usage.images',
} as const;

/**
 * The call arguments with the call's `onUsage` (when it has one) also adding what the provider reported to `span`
 * (summed when one call pays for several answers).
 */
function withUsageOn(span: Span, args: unknown[]): unknown[] {
  const [call, ...rest] = args;
  const report = (call as { onUsage?: unknown } | null)?.onUsage;
  if (typeof call !== 'object' || call === null || typeof report !== 'function') return args;
  const sums: Usage = {};
  const onUsage = (usage: Usage) => {
    for (const key of Object.keys(USAGE_ATTRIBUTES) as (keyof Usage)[]) {
      const n = usage[key];
      if (typeof n !== 'number') continue;
      sums[key] = (sums[key] ?? 0) + n;
      span.setAttribute(USAGE_ATTRIBUTES[key], sums[key]);
    }
    (report as (u: Usage) => void)(usage);
  };
  return [{ ...call, onUsage }, ...rest];
}

/**
 * `port` with every method call in a child span named `<portName>.<method>`, carrying the tokens (and images) the
 * provider reported for it.
 */
export function tracePort<T extends object>(portName: string, port: T): T {
  return new Proxy(port, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]) => {
        const span = tracer.startSpan(`${portName}.${key}`, { kind: SpanKind.CLIENT });
        return inSpan(span, () => Promise.resolve(value.apply(target, withUsageOn(span, args)) as unknown));
      };
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
