/**
 * OpenTelemetry traces over OTLP/HTTP JSON, received by a local node:http server: one trace from the caller's
 * `traceparent` through the `create` command, every stage attempt (a failed one included) and each provider call.
 * Without OTEL_EXPORTER_OTLP_ENDPOINT, nothing records.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { openPglite } from '../../src/db/pglite.client';
import { StageFailureError } from '../../src/errors';
import type { Providers } from '../../src/providers/providers';
import { composeRuntime } from '../../src/app/compose';
import { attr, startOtlpReceiver } from '../support/otlp.receiver';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
let dataDir: string;

/** Offline providers whose first article call fails (retryable), so the stage has two attempts. */
function flakyProviders(base: Providers): Providers {
  let failed = false;
  return {
    ...base,
    writer: {
      ...base.writer,
      generateIdeas: (c) => base.writer.generateIdeas(c),
      generateArticle: (c) => {
        if (failed) return base.writer.generateArticle(c);
        failed = true;
        return Promise.reject(new StageFailureError('RATE_LIMITED', 'try later', true));
      },
    },
  };
}

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-tracing-'));
});

afterAll(async () => {
  await receiver.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('traces over OTLP/HTTP', () => {
  it('refuses an OTLP protocol other than http/json at start, naming the variable', () => {
    expect(() =>
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    ).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  });

  it('records nothing without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    expect(trace.getTracer('inkwell').startSpan('probe').isRecording()).toBe(false);
  });

  it('exports one trace from the caller through the command, each stage attempt and each provider call', async () => {
    const env = {
      INKWELL_DATA_DIR: dataDir,
      INKWELL_LOG_LEVEL: 'silent',
      INKWELL_RETRY_BASE_MS: '10',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    };
    const config = loadConfig(env);
    const { runtime } = await composeRuntime({
      config,
      database: await openPglite(undefined),
      providers: (configured) => flakyProviders(configured()),
    });
    await runtime.start(false);
    try {
      const res = await runtime.http.inject({
        method: 'POST',
        url: '/api/blogs',
        headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
        payload: JSON.stringify({ instanceId: 'traced-store', idea: { title: 'Traced' } }),
      });
      expect(res.statusCode).toBe(202);
      const blogId = res.json<{ blogId: string }>().blogId;
      for (let i = 0; i < 400 && (await runtime.intake.get(blogId, 'traced-store')).status !== 'DONE'; i++)
        await new Promise((r) => setTimeout(r, 25));
      expect((await runtime.intake.get(blogId, 'traced-store')).status).toBe('DONE');
    } finally {
      await runtime.stop(); // flushes the spans
    }

    const spans = receiver.spans;
    expect(new Set(spans.map((s) => attr(s.resource, 'service.name')))).toEqual(new Set(['inkwell']));
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([TRACE_ID]));

    const command = spans.find((s) => s.name === 'command create');
    expect(command?.parentSpanId).toBe(CALLER_SPAN);
    const stages = spans.filter((s) => s.name.startsWith('stage '));
    expect(
      stages.map((s) => [
        attr(s.attributes, 'stage'),
        attr(s.attributes, 'attempt'),
        attr(s.attributes, 'outcome'),
        attr(s.attributes, 'error.code') ?? null,
      ]),
    ).toEqual([
      ['GENERATING_CONTENT', 1, 'error', 'RATE_LIMITED'],
      ['GENERATING_CONTENT', 2, 'ok', null],
      ['GENERATING_IMAGE', 1, 'ok', null],
      ['PUBLISHING', 1, 'ok', null],
    ]);
    for (const stage of stages) {
      expect(stage.parentSpanId).toBe(command?.spanId);
      expect(attr(stage.attributes, 'store.id')).toBe('traced-store');
      expect(attr(stage.attributes, 'blog.id')).toBe(attr(stages[0]!.attributes, 'blog.id'));
    }
    const calls = spans.filter((s) => ['writer.', 'images.', 'publisher.'].some((p) => s.name.startsWith(p)));
    expect(calls.map((c) => [c.name, stages.findIndex((s) => s.spanId === c.parentSpanId)])).toEqual([
      ['writer.generateArticle', 0],
      ['writer.generateArticle', 1],
      ['images.createHeaderImage', 2],
      ['publisher.publish', 3],
    ]);
  });
});
