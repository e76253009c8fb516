/** The CLI's commands, their options (for `node:util` parseArgs) and their help text. */
import type { ParseArgsConfig } from 'node:util';

/** A mistake in the command line: reported in one line, exit code 2, nothing sent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that was sent but failed or was rejected: reported in one line, exit code 1. */
export class CliFailure extends Error {
  override readonly name = 'CliFailure';
}

/** Names of the CLI's commands. */
export type CliCommand = 'create' | 'select' | 'cancel' | 'retry' | 'status' | 'list' | 'tail';

type Options = NonNullable<ParseArgsConfig['options']>;

const help: Options = { help: { type: 'boolean', short: 'h' } };
const prefix: Options = { prefix: { type: 'string' } };
const transports: Options = { nats: { type: 'string' }, http: { type: 'string' } };
const publishing: Options = { 'msg-id': { type: 'string' }, 'wait-ms': { type: 'string' } };
const instance: Options = { instance: { type: 'string' } };
/** `--all` and the filters of a bulk retry or cancel (over HTTP). */
const bulk: Options = {
  all: { type: 'boolean' },
  status: { type: 'string' },
  code: { type: 'string' },
  stage: { type: 'string' },
  'created-after': { type: 'string' },
  'created-before': { type: 'string' },
  'dry-run': { type: 'boolean' },
};

/** The options each command accepts. */
export const OPTIONS: Record<CliCommand, Options> = {
  create: {
    ...help,
    ...prefix,
    ...transports,
    ...publishing,
    ...instance,
    topic: { type: 'string' },
    'idea-title': { type: 'string' },
    'idea-summary': { type: 'string' },
    blog: { type: 'string' },
    keyword: { type: 'string', multiple: true },
    language: { type: 'string' },
    tone: { type: 'string' },
    author: { type: 'string' },
  },
  select: { ...help, ...prefix, ...transports, ...publishing, ...instance, index: { type: 'string' } },
  cancel: { ...help, ...prefix, ...transports, ...publishing, ...instance, ...bulk },
  retry: { ...help, ...prefix, ...transports, ...publishing, ...instance, ...bulk },
  status: { ...help, http: { type: 'string' }, ...instance },
  list: {
    ...help,
    http: { type: 'string' },
    ...instance,
    status: { type: 'string' },
    limit: { type: 'string' },
    cursor: { type: 'string' },
  },
  tail: {
    ...help,
    ...prefix,
    nats: { type: 'string' },
    ...instance,
    blog: { type: 'string' },
    json: { type: 'boolean' },
    'from-start': { type: 'boolean' },
  },
};

const TRANSPORT = `Transport:
  --nats <url>        NATS server(s), comma-separated (default: $NATS_URL); commands go through JetStream
  --http <url>        Inkwell's HTTP API (default: $INKWELL_URL, else http://127.0.0.1:3000 when no NATS is set);
                      sends $INKWELL_API_TOKEN as a Bearer token when set
  --prefix <p>        subject prefix (default: $INKWELL_SUBJECT_PREFIX, else blogs)`;

const BULK = `With --all (always over HTTP: POST /api/blogs/bulk/<command>), every blog matching the filters, ANDed,
at least one of them; prints { matched, applied }:
  --instance <id>  --status <S>  --code <error code>  --stage <S>  --created-after <ISO>  --created-before <ISO>
  --dry-run           only count the blogs that would be moved`;

const PUBLISHING = `Over NATS:
  --msg-id <id>       Nats-Msg-Id header (default: a random UUID); re-sending with the same id is stored once
  --wait-ms <n>       how long to watch <prefix>.rejected for this command after the PubAck (default 2000)`;

/** Help text of each command. */
export const HELP: Record<CliCommand, string> = {
  create: `Usage: inkwell create --instance <id> (--topic <t> | --idea-title <t> [--idea-summary <s>])
                      [--blog <id>] [--keyword <k>]... [--language <l>] [--tone <t>] [--author <memberId>]

Creates a blog. With --topic, ideas are generated and the blog waits for "inkwell select"; with --idea-title it
goes straight to writing. Prints the PubAck (NATS) or the blog (HTTP) as JSON.

${TRANSPORT}
${PUBLISHING}`,
  select: `Usage: inkwell select <blogId> --instance <id> --index <n>

Chooses idea <n> (0-based, as listed by "inkwell status") of a blog awaiting selection.

${TRANSPORT}
${PUBLISHING}`,
  cancel: `Usage: inkwell cancel <blogId> --instance <id>
       inkwell cancel --all [filters] [--dry-run]

Cancels a blog that is not finished yet.

${BULK}

${TRANSPORT}
${PUBLISHING}`,
  retry: `Usage: inkwell retry <blogId> --instance <id>
       inkwell retry --all [filters] [--dry-run]

Resumes a FAILED blog at the stage that failed.

${BULK}

${TRANSPORT}
${PUBLISHING}`,
  status: `Usage: inkwell status <blogId> [--instance <id>] [--http <url>]

Prints the blog as JSON (always over HTTP). Without --instance, any store's blog (operator's view).`,
  list: `Usage: inkwell list [--instance <id>] [--status <S>] [--limit <n>] [--cursor <c>] [--http <url>]

Prints { items, nextCursor } as JSON, newest first (always over HTTP). Without --instance, every store.
--limit is 1-500 (default 50); pass a nextCursor as --cursor for the next page.`,
  tail: `Usage: inkwell tail [--instance <id>] [--blog <id>] [--json] [--from-start] [--nats <url>] [--prefix <p>]

Follows status events (needs NATS; Ctrl-C stops): one line per event, or the raw event JSON with --json.
--from-start first replays the events stream ($INKWELL_EVENTS_STREAM, default INKWELL_EVENTS).`,
};

/** Help text of the CLI as a whole. */
export const MAIN_HELP = `Usage: inkwell <command> [options]     (inkwell <command> --help for its options)

Commands:
  create    create a blog from a topic or an idea
  select    choose one of a blog's generated ideas
  cancel    cancel a blog
  retry     resume a FAILED blog
  status    show one blog (HTTP)
  list      list blogs (HTTP)
  tail      follow status events (NATS)

Exit codes: 0 done, 1 the command failed or was rejected, 2 bad usage (nothing was sent).

${TRANSPORT}`;

/** Whether `name` is one of the CLI's commands. */
export function isCliCommand(name: string | undefined): name is CliCommand {
  return name !== undefined && Object.hasOwn(OPTIONS, name);
}
