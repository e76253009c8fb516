/**
 * One trace across a killed process (needs PostgreSQL): the `create` reaches process A with a caller's
 * `traceparent`; A is killed (SIGKILL) while the image stage hangs; process B takes the store over, restores the blog
 * from its snapshot and finishes it, and B's stage spans continue the same trace, under A's command span.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { attr, startOtlpReceiver } from '../support/otlp.receiver';
import { http, killHard, startRuntime, until, type RuntimeProcess } from '../support/process';
import { describeWithPostgres } from '../support/servers';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';

await describeWithPostgres('a trace across a process kill (needs PostgreSQL)', (db) => {
  let dataDir: string;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  const running: RuntimeProcess[] = [];
  const start = async (nodeId: string, hold: boolean) => {
    const rt = await startRuntime({
      DATABASE_URL: db().url,
      NATS_URL: '',
      REDIS_URL: '',
      INKWELL_DATA_DIR: dataDir,
      INKWELL_NODE_ID: nodeId,
      INKWELL_LEASE_TTL_MS: '2000',
      HARNESS_HOLD: hold ? '1' : '0',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      PORT: '0',
    });
    running.push(rt);
    return rt;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'inkwell-trace-restart-'));
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    for (const rt of running) rt.proc.kill('SIGKILL');
    await receiver?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('B continues the trace that A started', async () => {
    const a = await start('trace-a', true);
    const created = await http(
      a.base,
      'POST',
      '/api/blogs',
      { instanceId: 'trace-store', idea: { title: 'Across a kill' }, keywords: ['hold:image'] },
      { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
    );
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const blogId = created.body.blogId as string;
    await until('A to reach the image stage', async () => {
      const res = await http(a.base, 'GET', `/api/blogs/${blogId}`);
      return res.body.status === 'GENERATING_IMAGE' ? true : undefined;
    });
    // A's finished spans (the command, the article stage) leave within a second of ending.
    const command = await until('A to export its command span', async () =>
      receiver.spans.find((s) => s.name === 'command create' && s.traceId === TRACE_ID),
    );
    await killHard(a);

    const b = await start('trace-b', false);
    await until(
      'B to finish the blog',
      async () => ((await http(b.base, 'GET', `/api/blogs/${blogId}`)).body.status === 'DONE' ? true : undefined),
      30_000,
    );
    b.proc.kill('SIGTERM'); // a graceful stop flushes B's spans
    await b.exited;

    const fromB = receiver.spans.filter((s) => attr(s.resource, 'service.instance.id') === 'trace-b');
    const stagesOfB = fromB.filter((s) => s.name.startsWith('stage ') && attr(s.attributes, 'blog.id') === blogId);
    expect(stagesOfB.map((s) => attr(s.attributes, 'stage'))).toEqual(['GENERATING_IMAGE', 'PUBLISHING']);
    for (const span of stagesOfB) {
      expect(span.traceId).toBe(TRACE_ID);
      expect(span.parentSpanId).toBe(command.spanId);
    }
    expect(command.parentSpanId).toBe(CALLER_SPAN);
  });
});
