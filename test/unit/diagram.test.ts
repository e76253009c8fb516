/** The committed picture of the blog machine (machines/blog.machine.mmd and the README's copy) must be current. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { DIAGRAM_PATH, renderMermaid } from '../../scripts/diagram';

const README_PATH = new URL('../../README.md', import.meta.url);

describe('blog machine diagram', () => {
  it('matches the machine definition (run npm run diagram)', async () => {
    const committed = await readFile(DIAGRAM_PATH, 'utf8').catch(() => '');
    expect(committed, 'machines/blog.machine.mmd is stale: run npm run diagram').toBe(renderMermaid());
  });

  it('is the diagram the README shows (copy machines/blog.machine.mmd into its mermaid block)', async () => {
    const readme = await readFile(README_PATH, 'utf8');
    const block = /## The blog machine[\s\S]*?```mermaid\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README.md shows a stale blog machine: run npm run diagram and copy the .mmd').toBe(renderMermaid());
  });
});
