// `npm start`'s prestart, the tests' and the benchmark's global setup: makes sure dist/ holds a build of the current
// sources, building it (`npm run build`) when it is missing or older than them, and doing nothing (a few
// milliseconds of stat calls) when it is fresh. Plain JavaScript: it runs before any TypeScript could be compiled.
//
// Fresh means: `dist/.built` exists (the build's last step writes it, with the time the build started) and nothing in
// src/, machines/, drizzle/ or the tsconfig files changed after that time. Several callers at once (several
// `npm start`, test workers) build once: a lock directory (`.dist.lock`, holding the builder's pid) lets one build
// while the others wait for it, then look again.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const INPUTS = ['src', 'machines', 'drizzle', 'tsconfig.json', 'tsconfig.build.json'];
const STAMP = 'dist/.built';
const LOCK = '.dist.lock';
const WAIT_MS = 5 * 60_000;

/** The newest modification time (ms) of `p`, or of anything under it (directories count: a deleted file). */
function newest(p) {
  let st;
  try {
    st = statSync(p);
  } catch {
    return 0;
  }
  let latest = st.mtimeMs;
  if (st.isDirectory()) {
    for (const name of readdirSync(p)) latest = Math.max(latest, newest(path.join(p, name)));
  }
  return latest;
}

/** Why dist/ must be (re)built under `root`, or undefined when it is fresh. */
export function staleReason(root = ROOT) {
  let stamp;
  try {
    stamp = statSync(path.join(root, STAMP)).mtimeMs;
  } catch {
    return 'dist/ is missing or incomplete (no dist/.built)';
  }
  for (const input of INPUTS) {
    if (newest(path.join(root, input)) > stamp) return `${input} changed after the last build`;
  }
  return undefined;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Takes the build lock, waiting while a live process holds it; false if it stays held past the wait. */
function lock(root) {
  const dir = path.join(root, LOCK);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'pid'), String(process.pid));
      return true;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = NaN;
    try {
      holder = Number(readFileSync(path.join(dir, 'pid'), 'utf8'));
    } catch {
      /* being created or removed: look again */
    }
    // A holder that died (killed mid-build) leaves its lock behind: take it over.
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(dir, { recursive: true, force: true });
    else if (Date.now() > deadline) return false;
    else sleep(200);
  }
}

/**
 * Builds dist/ under `root` if it is stale; `log` says what happens (to stderr by default: stdout is the runtime's
 * JSON log). Returns 'fresh' or 'built'; throws when the build fails.
 */
export function ensureDist({ root = ROOT, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  if (!staleReason(root)) return 'fresh';
  if (!lock(root)) throw new Error(`another process has held ${LOCK} for ${WAIT_MS / 1000} s: remove it if stale`);
  try {
    const reason = staleReason(root); // another process may have built it while this one waited
    if (!reason) return 'fresh';
    log(`inkwell: building dist/ (${reason}): npm run build, usually 10-30 s...`);
    const started = Date.now();
    const run = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 2, 2] });
    if (run.status !== 0) {
      throw new Error(`npm run build failed (${run.status ?? run.signal}): see its output above`);
    }
    log(`inkwell: dist/ built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 'built';
  } finally {
    rmSync(path.join(root, LOCK), { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureDist();
  } catch (err) {
    process.stderr.write(`inkwell: ${err.message}\n`);
    process.exit(1);
  }
}
