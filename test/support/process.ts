/** Spawning real runtime processes for tests, and talking to them over HTTP. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** A runtime child process. */
export interface RuntimeProcess {
  proc: ChildProcess;
  port: number;
  /** Everything it wrote, for a failing test's message. */
  output: string[];
  base: string;
  exited: Promise<number | null>;
}

const ROOT = new URL('../..', import.meta.url).pathname;

/**
 * Starts `script` (default: the crash-test harness) with `env`, and without the inherited variables in `unset`;
 * resolves once it prints its ready line.
 */
export async function startRuntime(
  env: Record<string, string>,
  script = 'test/support/runtime.harness.ts',
  readyTimeoutMs = 60_000,
  unset: string[] = [],
): Promise<RuntimeProcess> {
  const inherited = { ...process.env };
  for (const name of unset) delete inherited[name];
  const proc = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { ...inherited, INKWELL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  const lines = createInterface({ input: proc.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL'); // never leave a half-started runtime behind
      reject(new Error(`runtime not ready in ${readyTimeoutMs} ms:\n${output.join('\n')}`));
    }, readyTimeoutMs);
    lines.on('line', (line) => {
      output.push(line);
      if (output.length > 2000) output.splice(0, 1000);
      try {
        const msg = JSON.parse(line) as { harness?: string; port?: number; msg?: string };
        // The harness says when it is ready; `npm start` has only its 'listening' log line.
        const ready = script.includes('harness') ? msg.harness === 'ready' : msg.msg === 'listening';
        if (ready && msg.port) {
          clearTimeout(timer);
          resolve(msg.port);
        }
      } catch {
        /* not JSON: keep it for the message */
      }
    });
    void exited.then((code) =>
      reject(new Error(`runtime exited (${code}) before it was ready:\n${output.join('\n')}`)),
    );
  });
  return { proc, port, output, base: `http://127.0.0.1:${port}`, exited };
}

/** Sends SIGKILL and waits for the process to be gone. */
export async function killHard(rt: RuntimeProcess): Promise<void> {
  rt.proc.kill('SIGKILL');
  await rt.exited;
}

/** JSON over HTTP: `{ status, body }`. */
export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON bodies
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/** Polls `check` until it returns a value that is not undefined, or throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
}

/**
 * Runs `script` to its exit with `env` added and the variables in `unset` removed from the inherited environment;
 * resolves with the exit code and everything it printed (SIGKILL after `timeoutMs`).
 */
export function runToExit(
  script: string,
  args: string[],
  opts: { env: Record<string, string>; unset: string[]; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = { ...process.env };
  for (const name of opts.unset) delete base[name];
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...base, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs);
  // 'close' (not 'exit'): it comes after the last 'data' events.
  return new Promise((resolve) =>
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The NATS side of a multi-process test: its subject prefix and stream names, the runtime env, and their removal. */
export function testStreams(nats: { url: string; prefix: string } | undefined) {
  const prefix = nats?.prefix ?? 'none';
  const streams = { cmd: `T_${prefix}_CMD`, evt: `T_${prefix}_EVT` };
  return {
    prefix,
    streams,
    /** What a runtime process needs to use them. */
    env: (): Record<string, string> => ({
      NATS_URL: nats!.url,
      INKWELL_SUBJECT_PREFIX: prefix,
      INKWELL_COMMANDS_STREAM: streams.cmd,
      INKWELL_EVENTS_STREAM: streams.evt,
    }),
    /** Deletes both streams (nothing to do without NATS). */
    async remove(): Promise<void> {
      if (!nats) return;
      const nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(streams.cmd).catch(() => undefined);
      await jsm.streams.delete(streams.evt).catch(() => undefined);
      await nc.close();
    },
  };
}

/** `npm start` run the way a supervisor or a shell runs it: leader of its own process group. */
export interface NpmStart {
  proc: ChildProcess;
  /** Everything it wrote, for a failing test's message. */
  output: string[];
  /** Resolves with the exit code, or the signal that killed npm. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Resolves with the first JSON log line whose `msg` is `msg` (rejects if it exits first or after `timeoutMs`). */
  logged(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends `signal` to every process of the group (npm, and node, which npm runs with `exec`). */
  signal(signal: NodeJS.Signals): void;
  /** The runtime's node process (`npm start`'s, after its prestart), once it exists. */
  child(): Promise<number>;
}

/** Spawns `npm start` in the project root with `env` added (blank values unset a variable for the runtime). */
export function spawnNpmStart(env: Record<string, string>): NpmStart {
  const proc = spawn('npm', ['start'], {
    cwd: ROOT,
    env: { ...process.env, INKWELL_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const output: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    proc.once('close', (code, signal) => resolve(code ?? signal)),
  );
  void exited.then(() => waiters.forEach((w) => w()));
  proc.stderr.on('data', (d: Buffer) => output.push(d.toString()));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    output.push(line);
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
      waiters.forEach((w) => w());
    } catch {
      /* npm's banner: keep it for the message */
    }
  });
  const logged = (msg: string, timeoutMs = 60_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no '${msg}' in ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        const found = logs.find((l) => l.msg === msg);
        if (found) done(undefined, found);
        else if (proc.exitCode !== null || proc.signalCode !== null) done(new Error(`exited before '${msg}'`));
      };
      const done = (err?: Error, line?: Record<string, unknown>) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (err) reject(new Error(`${err.message}:\n${output.slice(-30).join('\n')}`));
        else resolve(line!);
      };
      waiters.add(check);
      check();
    });
  const child = () =>
    until(
      'npm to start node',
      async () => {
        const children = await readFile(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').catch(() => '');
        // npm runs the prestart check (scripts/dist.fresh.mjs) first, as another child: wait for the runtime's node.
        for (const pid of children.trim().split(' ').filter(Boolean).map(Number)) {
          const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          if (cmdline.includes('src/main.js')) return pid;
        }
        return undefined;
      },
      30_000,
      5,
    );
  return { proc, output, exited, logged, signal: (s) => signalGroup(proc, s), child };
}

/** Sends `signal` to the group led by `proc`; a group already gone is not an error. */
function signalGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-proc.pid!, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Kills what is left of an `npm start` group (SIGKILL), for test cleanup. */
export function killGroup(run: NpmStart): void {
  signalGroup(run.proc, 'SIGKILL');
}
