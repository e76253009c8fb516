/** The code a figure measured: the commit checked out, and whether the product code differed from it. */
import { execFileSync } from 'node:child_process';

/** `git rev-parse HEAD`, plus `-dirty` when src/, machines/, bench/ or the lockfile have uncommitted changes. */
export function measuredCommit(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
  try {
    const head = git('rev-parse', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src', 'machines', 'bench', 'package-lock.json') !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}
