/** The CLI's side of the HTTP API: one JSON request, the contract's error body turned into a one-line failure. */
import type { CommandRequest } from './requests';
import { CliFailure } from './usage';

const TIMEOUT_MS = 30_000;

/** Sends one JSON request; resolves with the parsed 2xx body, or throws a CliFailure naming the error code. */
export async function requestJson(base: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const token = process.env.INKWELL_API_TOKEN?.trim();
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new CliFailure(`cannot reach ${base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (res.ok && parsed !== undefined) return parsed;
  const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
  const detail = error ? `${error.code ?? 'ERROR'}: ${error.message ?? ''}` : text.slice(0, 200) || res.statusText;
  throw new CliFailure(`${method} ${path} failed with HTTP ${res.status} ${detail}`);
}

/** Sends a command to its endpoint; resolves with the blog of the 202. */
export async function sendCommandHttp(base: string, request: CommandRequest): Promise<unknown> {
  const { name, body } = request;
  if (name === 'create') return requestJson(base, 'POST', '/api/blogs', body);
  const { blogId, ...rest } = body;
  return requestJson(base, 'POST', `/api/blogs/${encodeURIComponent(String(blogId))}/${name}`, rest);
}
