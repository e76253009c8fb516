/**
 * `npm start`'s prestart (scripts/dist.fresh.mjs), in a scratch project whose `npm run build` only counts its runs and
 * writes the stamp: it builds when dist/ is missing or older than the sources, not when fresh, and several starts at
 * once build once (the others wait for the lock, then find dist/ fresh).
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ensureDist, staleReason } from '../../scripts/dist.fresh.mjs';

const SCRIPT = new URL('../../scripts/dist.fresh.mjs', import.meta.url).pathname;
/** A separate process running the check on the scratch project. */
const CHILD = 'const { ensureDist } = await import(process.argv[1]); ensureDist({ root: process.argv[2] });';
let root: string;

/** A build that takes `ms`, appends a line to builds.log and stamps dist/ as the real one does. */
const build = (ms: number) =>
  `node -e "setTimeout(() => {}, ${ms})" && echo built >> builds.log && ` +
  'rm -rf dist && mkdir dist && touch dist/.build-started && mv dist/.build-started dist/.built';
const builds = async () =>
  (await readFile(path.join(root, 'builds.log'), 'utf8').catch(() => '')).split('\n').length - 1;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'inkwell-dist-fresh-'));
  await mkdir(path.join(root, 'src'));
  await writeFile(path.join(root, 'src/main.ts'), 'export {};\n');
  await writeFile(path.join(root, 'package.json'), JSON.stringify({ scripts: { build: build(1_000) } }));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

const quiet = { log: () => undefined };

it('builds when dist/ is missing or a source is newer, and not when fresh', async () => {
  expect(staleReason(root)).toMatch(/missing/);
  expect(ensureDist({ root, ...quiet })).toBe('built');
  expect(staleReason(root)).toBeUndefined();
  expect(ensureDist({ root, ...quiet })).toBe('fresh');
  expect(await builds()).toBe(1);

  const later = new Date(Date.now() + 5_000);
  await utimes(path.join(root, 'src/main.ts'), later, later);
  expect(staleReason(root)).toBe('src changed after the last build');
  expect(ensureDist({ root, ...quiet })).toBe('built');
  expect(await builds()).toBe(2);
});

it('builds once when several starts check at the same time', async () => {
  const run = () =>
    new Promise<number | null>((resolve) =>
      spawn(process.execPath, ['--input-type=module', '-e', CHILD, SCRIPT, root], { stdio: 'ignore' }).once(
        'exit',
        resolve,
      ),
    );
  expect(await Promise.all([run(), run(), run(), run()])).toEqual([0, 0, 0, 0]);
  expect(await builds()).toBe(1);
  expect(staleReason(root)).toBeUndefined();
});

it('fails, saying so, when the build fails', async () => {
  await writeFile(path.join(root, 'package.json'), JSON.stringify({ scripts: { build: 'exit 3' } }));
  expect(() => ensureDist({ root, ...quiet })).toThrow(/npm run build failed \(3\)/);
});
