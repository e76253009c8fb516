/** A local OTLP/HTTP (JSON) trace receiver for tests: a node:http server that keeps every span it is sent. */
import { createServer } from 'node:http';

/** One span as OTLP/JSON encodes it (ids are hex strings). */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  /** The resource attributes of the process that sent it. */
  resource: OtlpSpan['attributes'];
}

interface OtlpBody {
  resourceSpans: {
    resource: { attributes: OtlpSpan['attributes'] };
    scopeSpans: { spans: Omit<OtlpSpan, 'resource'>[] }[];
  }[];
}

/** An attribute's value: a string, or an integer as a number. */
export function attr(attributes: OtlpSpan['attributes'], key: string): string | number | undefined {
  const v = attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
}

/** Starts the receiver on a free loopback port; `endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes. */
export async function startOtlpReceiver() {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.includes('json')) {
        for (const r of (JSON.parse(body) as OtlpBody).resourceSpans)
          for (const s of r.scopeSpans)
            spans.push(...s.spans.map((span) => ({ ...span, resource: r.resource.attributes })));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    spans,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
