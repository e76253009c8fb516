/** The processes of the real-path benchmark: helper children that answer with a JSON line, and `npm start`. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { cleanEnv, exited, ROOT, spawnTsx } from './spawn';

/** A child that prints JSON lines; `result(key)` is the first line that has `key`. */
export interface Child {
  proc: ChildProcess;
  result<T>(key: string): Promise<T>;
  stop(): Promise<void>;
}

/** Starts `node --import tsx <args>` with a clean environment plus `env`. */
export function startChild(args: string[], env: Record<string, string>): Child {
  const waiting = new Map<string, (line: Record<string, unknown>) => void>();
  const seen: Record<string, unknown>[] = [];
  const proc = spawnTsx(args, cleanEnv(env), (line) => {
    if (!line.startsWith('{')) return;
    const json = JSON.parse(line) as Record<string, unknown>;
    seen.push(json);
    for (const [key, resolve] of waiting) if (key in json) resolve(json);
  });
  const gone = exited(proc);
  return {
    proc,
    result<T>(key: string) {
      const found = seen.find((j) => key in j);
      if (found) return Promise.resolve(found as T);
      return Promise.race([
        new Promise<T>((resolve) => waiting.set(key, (j) => resolve(j as T))),
        gone.then((code) => Promise.reject(new Error(`${args[0]} exited (${code}) before printing "${key}"`))),
      ]);
    },
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await gone;
    },
  };
}

/** A running `npm start`. */
export interface NpmStart {
  proc: ChildProcess;
  port: number;
  stop(): Promise<number | null>;
}

/**
 * Runs `npm start` in the repository root as its own process group, as a user would, with a clean environment plus
 * `env`; resolves at its `listening` log line. With INKWELL_BENCH_PROFILE=<dir>, `node --cpu-prof` runs
 * dist/src/main.js (what `npm start` runs) directly instead, and writes its CPU profile there. The caller builds
 * dist/ first (bench/run.ts: `ensureDist`), so that concurrent starts never build.
 */
export async function startNpm(env: Record<string, string>, readyMs = 60_000): Promise<NpmStart> {
  const profile = process.env.INKWELL_BENCH_PROFILE;
  // Node does not take --cpu-prof from NODE_OPTIONS: a profiled run starts the runtime's node directly.
  const [cmd, args] = profile
    ? [
        process.execPath,
        [
          '--cpu-prof',
          `--cpu-prof-dir=${profile}`,
          '--require',
          './dist/src/runtime/early.signals.cjs',
          '--enable-source-maps',
          'dist/src/main.js',
        ],
      ]
    : ['npm', ['start', '--silent']];
  const proc = spawn(cmd, args, { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const gone = exited(proc);
  const tail: string[] = [];
  proc.stderr.on('data', (d: Buffer) => tail.push(d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm start not listening in ${readyMs} ms:\n${tail.join('')}`)),
      readyMs,
    );
    createInterface({ input: proc.stdout }).on('line', (line) => {
      if (tail.length < 200) tail.push(line);
      if (line.includes('"trace"')) console.log(line);
      if (!line.includes('"listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    void gone.then((code) => reject(new Error(`npm start exited (${code}):\n${tail.join('\n')}`)));
  });
  return {
    proc,
    port,
    async stop() {
      const group = -proc.pid!;
      try {
        process.kill(group, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const killer = setTimeout(() => {
        try {
          process.kill(group, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 20_000);
      const code = await gone;
      clearTimeout(killer);
      return code;
    },
  };
}
