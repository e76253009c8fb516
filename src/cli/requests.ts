/** From parsed command-line values to validated requests: everything is checked here, before anything is sent. */
import { BLOG_STATUSES } from '../../machines/blog.types';
import {
  blogRefSchema,
  createSchema,
  describeIssues,
  idSchema,
  selectSchema,
  type CommandName,
} from '../intake/command.schema';
import { bulkSchema } from '../intake/bulk.schema';
import { UsageError } from './usage';

/** parseArgs values, loosely typed because the options differ per command. */
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A command to send, with its validated body. */
export interface CommandRequest {
  name: CommandName;
  body: Record<string, unknown>;
}

const str = (values: Values, name: string) => (typeof values[name] === 'string' ? values[name] : undefined);

function required(values: Values, name: string): string {
  const value = str(values, name);
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

function checkId(value: string, what: string): string {
  const parsed = idSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`${what} ${JSON.stringify(value)}: ${describeIssues(parsed.error)}`);
  return value;
}

/** A non-negative integer option, or `fallback` when absent. */
export function integerOption(values: Values, name: string, fallback?: number, max = Number.MAX_SAFE_INTEGER) {
  const raw = str(values, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) throw new UsageError(`--${name} must be an integer from 0 to ${max}`);
  return Number(raw);
}

/** The single `<blogId>` argument of select, cancel, retry and status. */
export function blogIdArgument(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError(`expected one <blogId> argument, got ${positionals.length}`);
  return checkId(positionals[0]!, 'blogId');
}

function validated(name: CommandName, body: Record<string, unknown>): CommandRequest {
  const schema = name === 'create' ? createSchema : name === 'select' ? selectSchema : blogRefSchema;
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new UsageError(`invalid ${name}: ${describeIssues(parsed.error)}`);
  return { name, body };
}

/** The `create` command; `blogId` is left out when not given (the transport decides). */
export function createRequest(values: Values, positionals: string[]): CommandRequest {
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
  const topic = str(values, 'topic');
  const title = str(values, 'idea-title');
  const summary = str(values, 'idea-summary');
  if ((topic === undefined) === (title === undefined)) throw new UsageError('give one of --topic, --idea-title');
  if (summary !== undefined && title === undefined) throw new UsageError('--idea-summary needs --idea-title');
  const blog = str(values, 'blog');
  const keywords = (values.keyword as string[] | undefined) ?? [];
  const optional = { language: 'language', tone: 'tone', authorMemberId: 'author' } as const;
  const body: Record<string, unknown> = {
    ...(blog !== undefined ? { blogId: checkId(blog, '--blog') } : {}),
    instanceId: checkId(required(values, 'instance'), '--instance'),
    ...(topic !== undefined ? { topic } : {}),
    ...(title !== undefined ? { idea: { title, ...(summary !== undefined ? { summary } : {}) } } : {}),
    ...(keywords.length > 0 ? { keywords } : {}),
  };
  for (const [field, option] of Object.entries(optional)) {
    const value = str(values, option);
    if (value !== undefined) body[field] = value;
  }
  return validated('create', body);
}

/** The `select`, `cancel` or `retry` command. */
export function blogCommandRequest(name: 'select' | 'cancel' | 'retry', values: Values, positionals: string[]) {
  const body: Record<string, unknown> = {
    blogId: blogIdArgument(positionals),
    instanceId: checkId(required(values, 'instance'), '--instance'),
  };
  if (name === 'select') body.ideaIndex = integerOption(values, 'index') ?? required(values, 'index');
  return validated(name, body);
}

/** The optional `--instance` of status and list. */
export function optionalInstance(values: Values): string | undefined {
  const value = str(values, 'instance');
  return value === undefined ? undefined : checkId(value, '--instance');
}

/** The query of `list`. */
export function listQuery(values: Values): Record<string, string> {
  const status = str(values, 'status');
  if (status !== undefined && !(BLOG_STATUSES as readonly string[]).includes(status)) {
    throw new UsageError(`--status must be one of ${BLOG_STATUSES.join(', ')}`);
  }
  const limit = integerOption(values, 'limit', undefined, 500);
  if (limit === 0) throw new UsageError('--limit must be an integer from 1 to 500');
  const instanceId = optionalInstance(values);
  const cursor = str(values, 'cursor');
  return {
    ...(cursor ? { cursor } : {}),
    ...(instanceId !== undefined ? { instanceId } : {}),
    ...(status !== undefined ? { status } : {}),
    ...(limit !== undefined ? { limit: String(limit) } : {}),
  };
}

/** The `--blog` filter of tail. */
export function optionalBlog(values: Values): string | undefined {
  const value = str(values, 'blog');
  return value === undefined ? undefined : checkId(value, '--blog');
}

/** The body of `retry --all` / `cancel --all`: the filters, checked like the server checks them. */
export function bulkRequest(values: Values, positionals: string[]): Record<string, unknown> {
  if (positionals.length > 0) throw new UsageError('--all takes no <blogId>');
  const options = {
    instanceId: 'instance',
    status: 'status',
    code: 'code',
    stage: 'stage',
    createdAfter: 'created-after',
    createdBefore: 'created-before',
  } as const;
  const body: Record<string, unknown> = {};
  for (const [field, option] of Object.entries(options)) {
    const value = str(values, option);
    if (value !== undefined) body[field] = value;
  }
  if (values['dry-run'] === true) body.dryRun = true;
  const parsed = bulkSchema.safeParse(body);
  if (!parsed.success) throw new UsageError(`invalid --all: ${describeIssues(parsed.error)}`);
  return body;
}
