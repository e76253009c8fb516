/**
 * The one place that reads the environment. Every variable of the contract is parsed here, once;
 * all problems are reported together, each naming its variable.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors';

const int = (min: number) => z.coerce.number().int().min(min);
const ms = int(1);
/** Dollars, as a decimal number. */
const price = z.coerce.number().finite().min(0);
const optionalUrl = z.string().url().optional();
const csvUrls = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().min(1)).min(1));

const schema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must start with postgres:// or postgresql://')
    .optional(),
  NATS_URL: csvUrls.optional(),
  PORT: int(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_MODEL: z.string().min(1).default('gpt-4o-mini'),
  REPLICATE_API_TOKEN: z.string().min(1).optional(),
  REPLICATE_BASE_URL: optionalUrl,
  REPLICATE_MODEL: z.string().min(1).default('black-forest-labs/flux-schnell'),
  WIX_APP_ID: z.string().min(1).optional(),
  WIX_APP_SECRET: z.string().min(1).optional(),
  WIX_BASE_URL: z.string().url().default('https://www.wixapis.com'),
  WIX_DEFAULT_MEMBER_ID: z.string().min(1).max(128).optional(),
  REDIS_URL: optionalUrl,
  INKWELL_PUBLIC_URL: optionalUrl,
  REPLICATE_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64')
    .optional(),
  INKWELL_RETENTION_DAYS: z.coerce.number().min(0).default(30),
  INKWELL_DATA_DIR: z.string().min(1).default('./.inkwell'),
  INKWELL_NODE_ID: z.string().min(1).max(128).default(`${os.hostname()}-${process.pid}`),
  INKWELL_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be NATS subject tokens without wildcards')
    .default('blogs'),
  INKWELL_API_TOKEN: z.string().min(1).optional(),
  INKWELL_COMMANDS_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a JetStream stream name')
    .default('INKWELL_COMMANDS'),
  INKWELL_EVENTS_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a JetStream stream name')
    .default('INKWELL_EVENTS'),
  INKWELL_OPENAI_CONCURRENCY: int(1).default(8),
  INKWELL_OPENAI_RPM: int(1).default(500),
  INKWELL_REPLICATE_CONCURRENCY: int(1).default(4),
  INKWELL_REPLICATE_RPM: int(1).default(300),
  INKWELL_WIX_CONCURRENCY: int(1).default(4),
  INKWELL_WIX_RPM: int(1).default(150),
  INKWELL_OPENAI_TPM: int(1).optional(),
  INKWELL_STORE_DAILY_TOKENS: int(1).optional(),
  INKWELL_PRICE_INPUT_PER_MTOK: price.optional(),
  INKWELL_PRICE_OUTPUT_PER_MTOK: price.optional(),
  INKWELL_PRICE_PER_IMAGE: price.optional(),
  INKWELL_MAX_ACTIVE_PER_STORE: int(1).default(20),
  INKWELL_MAX_ATTEMPTS: int(1).default(5),
  INKWELL_RETRY_BASE_MS: int(0).default(1000),
  INKWELL_SELECTION_TIMEOUT_MS: ms.default(7 * 24 * 60 * 60 * 1000),
  INKWELL_LEASE_TTL_MS: ms.default(15_000),
  INKWELL_PROVIDER_TIMEOUT_MS: ms.default(60_000),
  INKWELL_INSPECT: z.string().url().optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: z.literal('http/json', 'only http/json is supported').optional(),
  INKWELL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Parsed configuration; field names follow the environment variables. */
export type Config = z.infer<typeof schema> & { dataDir: string };

/** Parses `env` (blank values count as unset); throws one `ConfigError` listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const c = parsed.data;
  if (Boolean(c.WIX_APP_ID) !== Boolean(c.WIX_APP_SECRET)) {
    throw new ConfigError('invalid configuration: WIX_APP_ID and WIX_APP_SECRET must be set together');
  }
  if (c.INKWELL_PUBLIC_URL && !c.REPLICATE_WEBHOOK_SECRET) {
    throw new ConfigError(
      'invalid configuration: INKWELL_PUBLIC_URL needs REPLICATE_WEBHOOK_SECRET to verify webhooks',
    );
  }
  return { ...c, dataDir: path.resolve(c.INKWELL_DATA_DIR) };
}

/** The configuration with every secret replaced, safe to log. */
export function redactConfig(config: Config): Record<string, unknown> {
  const secret = /KEY|TOKEN|SECRET|PASSWORD/;
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => {
      if (secret.test(k) && v !== undefined) return [k, '[redacted]'];
      if (k === 'DATABASE_URL' && typeof v === 'string') return [k, v.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@')];
      return [k, v];
    }),
  );
}
