/** Which way a CLI command goes: NATS (JetStream) or the HTTP API, from flags first, then the environment. */
import { UsageError } from './usage';
import type { Values } from './requests';

/** Where to send. */
export type Transport = { kind: 'nats'; servers: string[]; prefix: string } | { kind: 'http'; base: string };

const DEFAULT_HTTP = 'http://127.0.0.1:3000';
const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const str = (values: Values, name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
const set = (value: string | undefined) => (value !== undefined && value.trim() !== '' ? value.trim() : undefined);

function servers(urls: string, from: string): string[] {
  const list = urls
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new UsageError(`${from} names no NATS server`);
  return list;
}

/** The subject prefix: `--prefix`, else INKWELL_SUBJECT_PREFIX, else `blogs`. */
export function prefixOf(values: Values, env: NodeJS.ProcessEnv): string {
  const prefix = str(values, 'prefix') ?? set(env.INKWELL_SUBJECT_PREFIX) ?? 'blogs';
  if (!PREFIX.test(prefix)) throw new UsageError(`prefix ${JSON.stringify(prefix)} is not NATS subject tokens`);
  return prefix;
}

/** The HTTP base URL: `--http`, else INKWELL_URL, else the local default. */
export function httpBase(values: Values, env: NodeJS.ProcessEnv): string {
  const base = str(values, 'http') ?? set(env.INKWELL_URL) ?? DEFAULT_HTTP;
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new UsageError(`${JSON.stringify(base)} is not an http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${base} is not an http(s) URL`);
  return base.replace(/\/+$/, '');
}

/** NATS servers from `--nats` or NATS_URL, if any. */
export function natsServers(values: Values, env: NodeJS.ProcessEnv): string[] | undefined {
  const flag = str(values, 'nats');
  if (flag !== undefined) return servers(flag, '--nats');
  const fromEnv = set(env.NATS_URL);
  return fromEnv === undefined ? undefined : servers(fromEnv, 'NATS_URL');
}

/** For create/select/cancel/retry: `--http` or `--nats` if given, else NATS when NATS_URL is set, else HTTP. */
export function chooseTransport(values: Values, env: NodeJS.ProcessEnv): Transport {
  if (values.http !== undefined && values.nats !== undefined) throw new UsageError('give --nats or --http, not both');
  const nats = values.http === undefined ? natsServers(values, env) : undefined;
  if (nats) return { kind: 'nats', servers: nats, prefix: prefixOf(values, env) };
  return { kind: 'http', base: httpBase(values, env) };
}
