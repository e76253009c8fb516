/**
 * `inkwell`, the operator CLI: sends the contract's commands over NATS (JetStream) or HTTP, reads blogs over HTTP
 * and follows events over NATS. Exit codes: 0 done, 1 failed or rejected, 2 bad usage (nothing was sent).
 */
import { parseArgs } from 'node:util';
import { connectNats, sendCommandNats } from './nats.client';
import { requestJson, sendCommandHttp } from './http.client';
import {
  blogCommandRequest,
  blogIdArgument,
  bulkRequest,
  createRequest,
  integerOption,
  listQuery,
  optionalBlog,
  optionalInstance,
  type CommandRequest,
  type Values,
} from './requests';
import { tail } from './tail';
import { chooseTransport, httpBase, natsServers, prefixOf } from './transport';
import { CliFailure, HELP, MAIN_HELP, OPTIONS, UsageError, isCliCommand, type CliCommand } from './usage';

const out = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

async function sendCommand(request: CommandRequest, values: Values): Promise<number> {
  const transport = chooseTransport(values, process.env);
  const waitMs = integerOption(values, 'wait-ms', 2000)!;
  const msgId = typeof values['msg-id'] === 'string' ? values['msg-id'] : undefined;
  if (msgId !== undefined && msgId.trim() === '') throw new UsageError('--msg-id must not be empty');
  if (transport.kind === 'http') {
    out(await sendCommandHttp(transport.base, request));
    return 0;
  }
  const nc = await connectNats(transport.servers);
  try {
    const result = await sendCommandNats(nc, transport.prefix, request, { waitMs, ...(msgId ? { msgId } : {}) });
    out(result);
    if (!result.rejected) return 0;
    const { code, message } = result.rejected;
    process.stderr.write(`inkwell: ${request.name} rejected: ${String(code)}: ${String(message)}\n`);
    return 1;
  } finally {
    await nc.drain().catch(() => nc.close());
  }
}

async function runTail(values: Values): Promise<number> {
  const servers = natsServers(values, process.env);
  if (!servers) {
    throw new UsageError(
      'tail needs NATS: pass --nats <url> or set NATS_URL (without NATS, follow GET /api/events on the runtime: Server-Sent Events)',
    );
  }
  const [instanceId, blogId] = [optionalInstance(values), optionalBlog(values)];
  const options = {
    prefix: prefixOf(values, process.env),
    ...(instanceId !== undefined ? { instanceId } : {}),
    ...(blogId !== undefined ? { blogId } : {}),
    json: values.json === true,
    fromStart: values['from-start'] === true,
    stream: process.env.INKWELL_EVENTS_STREAM?.trim() || 'INKWELL_EVENTS',
  };
  const nc = await connectNats(servers, true);
  try {
    const write = (line: string) => process.stdout.write(`${line}\n`);
    await tail(nc, options, write, (line) => process.stderr.write(`inkwell: ${line}\n`));
  } finally {
    await nc.close();
  }
  return 0;
}

async function run(command: CliCommand, values: Values, positionals: string[]): Promise<number> {
  switch (command) {
    case 'create':
      return sendCommand(createRequest(values, positionals), values);
    case 'cancel':
    case 'retry':
      if (values.all === true) {
        if (values.nats !== undefined) throw new UsageError('--all goes over HTTP; --nats does not apply');
        const body = bulkRequest(values, positionals);
        out(await requestJson(httpBase(values, process.env), 'POST', `/api/blogs/bulk/${command}`, body));
        return 0;
      }
      for (const option of ['status', 'code', 'stage', 'created-after', 'created-before', 'dry-run']) {
        if (values[option] !== undefined) throw new UsageError(`--${option} goes with --all`);
      }
      return sendCommand(blogCommandRequest(command, values, positionals), values);
    case 'select':
      return sendCommand(blogCommandRequest(command, values, positionals), values);
    case 'status': {
      const blogId = blogIdArgument(positionals);
      const instanceId = optionalInstance(values);
      const query = instanceId !== undefined ? `?instanceId=${encodeURIComponent(instanceId)}` : '';
      out(await requestJson(httpBase(values, process.env), 'GET', `/api/blogs/${blogId}${query}`));
      return 0;
    }
    case 'list': {
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
      const query = new URLSearchParams(listQuery(values)).toString();
      out(await requestJson(httpBase(values, process.env), 'GET', `/api/blogs${query ? `?${query}` : ''}`));
      return 0;
    }
    case 'tail':
      if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
      return runTail(values);
  }
}

/** Runs the CLI on `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    process.stdout.write(`${isCliCommand(topic) ? HELP[topic] : MAIN_HELP}\n`);
    return command === undefined ? 2 : 0;
  }
  try {
    if (!isCliCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)} (see inkwell --help)`);
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS[command], allowPositionals: true });
    if (values.help === true) {
      process.stdout.write(`${HELP[command]}\n`);
      return 0;
    }
    return await run(command, values, positionals);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    const known = usage || err instanceof CliFailure;
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    process.stderr.write(`inkwell: ${known ? message : `unexpected error: ${message}`}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
