import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { undiciFetch } from '../../src/providers/undici.fetch';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
const routes = new Map<string, Handler>();
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => routes.get(req.url ?? '')?.(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('undiciFetch (the fetch the openai SDK gets)', () => {
  it('sends the method, headers and body, and answers with status, headers (lists kept) and body', async () => {
    let seen: { method?: string; auth?: string; body?: string } = {};
    routes.set('/echo', (req, body, res) => {
      seen = { method: req.method!, auth: req.headers.authorization!, body };
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'req-1' });
      res.end('{"ok":true}');
    });
    const headers = new Headers({ Authorization: 'Bearer k', 'Content-Type': 'application/json' });
    const response = await undiciFetch(`${base}/echo`, { method: 'post', headers, body: '{"q":1}' });
    expect(seen).toEqual({ method: 'POST', auth: 'Bearer k', body: '{"q":1}' });
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.url).toBe(`${base}/echo`);
    expect(response.headers.get('x-request-id')).toBe('req-1');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ ok: true });
  });

  it('decodes a gzip body as fetch would, and gives a 204 no body', async () => {
    routes.set('/gz', (_req, _body, res) => {
      res.writeHead(429, { 'content-encoding': 'gzip', 'retry-after': '2' });
      res.end(gzipSync('{"error":{"message":"slow down"}}'));
    });
    routes.set('/none', (_req, _body, res) => res.writeHead(204).end());
    const gz = await undiciFetch(`${base}/gz`);
    expect(gz.status).toBe(429);
    expect(gz.headers.get('retry-after')).toBe('2');
    expect(await gz.text()).toBe('{"error":{"message":"slow down"}}');
    const none = await undiciFetch(`${base}/none`, { method: 'DELETE' });
    expect(none.status).toBe(204);
    expect(none.body).toBeNull();
  });

  it('rejects with the signal’s reason when aborted (also while the body is read), as fetch does', async () => {
    routes.set('/slow', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":');
    });
    const controller = new AbortController();
    const pending = undiciFetch(`${base}/slow`, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const error: unknown = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('AbortError');
    const already = await undiciFetch(`${base}/slow`, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect((already as DOMException).name).toBe('AbortError');
  });

  it('rejects with TypeError("fetch failed") carrying the cause when the connection fails', async () => {
    routes.set('/drop', (req) => req.socket.destroy());
    const error: unknown = await undiciFetch(`${base}/drop`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toBe('fetch failed');
    expect((error as TypeError).cause).toBeInstanceOf(Error);
  });
});
