/**
 * Traces on the NATS paths, with two `npm start` processes on PostgreSQL and NATS, the real OpenAI adapter against
 * the fake over HTTP, and a local OTLP/HTTP receiver:
 * - a `create` published over JetStream with a `traceparent` header: its command span continues the caller's span,
 *   and every stage span of the blog is in the caller's trace; the article call's span carries the tokens the
 *   provider reported for it;
 * - a `create` sent to process B for a store that process A holds: B forwards it to A over NATS, and A's command
 *   span (and the blog's stage spans) continue B's `forward create` span, through the `traceparent` NATS header of
 *   the forwarded message, in one trace even when the caller sent no `traceparent`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFakeOpenAi, openAiReplies, type FakeOpenAi } from '../support/fake.openai';
import { attr, startOtlpReceiver, type OtlpSpan } from '../support/otlp.receiver';
import { http, killGroup, spawnNpmStart, testStreams, until, type NpmStart } from '../support/process';
import { describeWithPostgres, requireNats } from '../support/servers';

const nats = await requireNats();
const TRACE_ID = '5e1f0c8a7d3b4e29a6c1b0f9e8d7c6b5';
const CALLER_SPAN = '1a2b3c4d5e6f7081';
const STORE = 'traced-nats-store';

await describeWithPostgres(
  'traces over NATS: JetStream headers and forwarded commands (needs PostgreSQL, NATS)',
  (db) => {
    const t = testStreams(nats);
    let dataDir: string;
    let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
    let openai: FakeOpenAi;
    let nc: NatsConnection | undefined;
    const running: NpmStart[] = [];

    const start = async (nodeId: string) => {
      const run = spawnNpmStart({
        DATABASE_URL: db().url,
        ...t.env(),
        INKWELL_DATA_DIR: dataDir,
        INKWELL_NODE_ID: nodeId,
        PORT: '0',
        REDIS_URL: '',
        OPENAI_API_KEY: 'sk-fake',
        OPENAI_BASE_URL: openai.url,
        REPLICATE_API_TOKEN: '',
        WIX_APP_ID: '',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      });
      running.push(run);
      return `http://127.0.0.1:${(await run.logged('listening')).port as number}`;
    };
    const status = async (base: string, blogId: string) =>
      until(
        `${blogId} DONE`,
        async () => ((await http(base, 'GET', `/api/blogs/${blogId}`)).body.status === 'DONE' ? true : undefined),
        60_000,
      );
    const spansOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);
    const node = (s: OtlpSpan) => attr(s.resource, 'service.instance.id');
    /** The usage OpenAI reported for the article of `title`. */
    const articleUsage = (title: string) => {
      const req = openai.completions().find((r) => JSON.stringify(r.body).includes(`Title idea: ${title}`) && r.usage);
      return [req?.usage?.prompt_tokens, req?.usage?.completion_tokens];
    };
    /** The blog's stage spans and its article call's span, once the receiver has them all. */
    const blogSpans = (traceId: string, blogId: string) =>
      until(`the spans of ${blogId}`, async () => {
        const spans = spansOf(traceId);
        const stages = spans.filter((s) => s.name.startsWith('stage ') && attr(s.attributes, 'blog.id') === blogId);
        const article = spans.find(
          (s) => s.name === 'writer.generateArticle' && stages.some((st) => st.spanId === s.parentSpanId),
        );
        return stages.some((s) => attr(s.attributes, 'stage') === 'PUBLISHING') && article
          ? { stages, article }
          : undefined;
      });

    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-trace-nats-'));
      receiver = await startOtlpReceiver();
      openai = await startFakeOpenAi({ apiKey: 'sk-fake' });
      // The holder's article hangs, so A keeps its store busy (a store with no working blog is given back when idle).
      openai.script((req) =>
        JSON.stringify(req.body).includes('Title idea: Holder') ? openAiReplies.hang() : undefined,
      );
      if (nats) nc = await connect({ servers: nats.url });
    });
    afterAll(async () => {
      running.forEach(killGroup);
      await Promise.all(running.map((r) => r.exited));
      await nc?.close();
      await t.remove();
      await receiver?.close();
      await openai?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it.skipIf(!nats)('continues the JetStream traceparent, and B forwards into the same trace at A', async () => {
      const a = await start('trace-nats-a');
      const jsm = await jetstreamManager(nc!);
      await until('the commands stream', () => jsm.streams.info(t.streams.cmd));

      // 1. JetStream, with the caller's traceparent header: one trace from the caller's span to PUBLISHING.
      const h = headers();
      h.set('traceparent', `00-${TRACE_ID}-${CALLER_SPAN}-01`);
      h.set('Nats-Msg-Id', 'trace-nats-x');
      const body = { blogId: 'trace-nats-x', instanceId: STORE, idea: { title: 'Traced over NATS' } };
      await jetstream(nc!).publish(`${t.prefix}.create`, JSON.stringify(body), { headers: h });
      await status(a, 'trace-nats-x');
      const x = await blogSpans(TRACE_ID, 'trace-nats-x');
      const command = spansOf(TRACE_ID).find((s) => s.name === 'command create');
      expect(command?.parentSpanId).toBe(CALLER_SPAN);
      expect(x.stages.map((s) => attr(s.attributes, 'stage'))).toEqual([
        'GENERATING_CONTENT',
        'GENERATING_IMAGE',
        'PUBLISHING',
      ]);
      for (const s of x.stages) expect(s.parentSpanId).toBe(command?.spanId);
      const [input, output] = articleUsage('Traced over NATS');
      expect(input).toBeGreaterThan(0);
      expect([
        attr(x.article.attributes, 'gen_ai.usage.input_tokens'),
        attr(x.article.attributes, 'gen_ai.usage.output_tokens'),
      ]).toEqual([input, output]);

      // 2. A holds the store, busy with the holder; B receives a create for it over HTTP, with no traceparent.
      const holder = await http(a, 'POST', '/api/blogs', {
        blogId: 'trace-nats-h',
        instanceId: STORE,
        idea: { title: 'Holder' },
      });
      expect(holder.status).toBe(202);
      const b = await start('trace-nats-b');
      const created = await http(b, 'POST', '/api/blogs', {
        blogId: 'trace-nats-y',
        instanceId: STORE,
        idea: { title: 'Forwarded' },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      await status(b, 'trace-nats-y');
      const forward = await until('B forward span', async () =>
        receiver.spans.find((s) => s.name === 'forward create' && node(s) === 'trace-nats-b'),
      );
      expect(attr(forward.attributes, 'inkwell.owner')).toBe('trace-nats-a');
      const y = await blogSpans(forward.traceId, 'trace-nats-y');
      const owned = spansOf(forward.traceId).find((s) => s.name === 'command create');
      expect([node(owned!), owned?.parentSpanId]).toEqual(['trace-nats-a', forward.spanId]);
      for (const s of y.stages) expect([node(s), s.parentSpanId]).toEqual(['trace-nats-a', owned?.spanId]);
      const [fInput, fOutput] = articleUsage('Forwarded');
      expect([
        attr(y.article.attributes, 'gen_ai.usage.input_tokens'),
        attr(y.article.attributes, 'gen_ai.usage.output_tokens'),
      ]).toEqual([fInput, fOutput]);
    });
  },
);
