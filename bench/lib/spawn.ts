/** Child processes for the scenarios that measure a whole process: start time, output lines, memory. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';

/** The repository root (where `src/` is), whatever the working directory. */
export const ROOT = new URL('../../', import.meta.url).pathname;

/** A minimal environment: nothing from the caller's NATS/Redis/provider keys leaks into the child. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG'];
  return { ...Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]])), ...extra };
}

/**
 * Starts `node --import tsx <args>` in the repository root; `onLine` sees every stdout line. With
 * `INKWELL_BENCH_PROFILE=<dir>` the child writes a V8 CPU profile there when it exits (open it in Chrome DevTools).
 */
export function spawnTsx(args: string[], env: NodeJS.ProcessEnv, onLine: (line: string) => void): ChildProcess {
  const profile = process.env.INKWELL_BENCH_PROFILE;
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  createInterface({ input: child.stdout }).on('line', onLine);
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  return child;
}

/** VmRSS and VmHWM (peak) of a process in MB, from /proc. */
export async function memoryOf(pid: number): Promise<{ rssMb: number; peakMb: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), peakMb: Math.round(kb('VmHWM') / 1024) };
}

/** Resolves with the exit code once `child` has exited. */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}
