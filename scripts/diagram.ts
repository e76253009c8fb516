/**
 * Writes the blog machine as a Mermaid `stateDiagram-v2` (machines/blog.machine.mmd), generated from the machine
 * definition: working stages are nested states, transitions are labelled with their events and guards.
 * `test/unit/diagram.test.ts` fails when the committed file (or the README's copy) is stale.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { AnyStateNode } from 'xstate';
import { blogMachine } from '../machines/blog.machine';

/** Where the generated diagram lives. */
export const DIAGRAM_PATH = fileURLToPath(new URL('../machines/blog.machine.mmd', import.meta.url));

const idOf = (node: AnyStateNode) => node.path.join('_');

function eventLabel(eventType: string): string {
  const [, kind, , actor] = eventType.split('.');
  if (eventType.startsWith('xstate.done.actor.')) return actor === 'admission' ? 'admitted' : `${actor} done`;
  if (kind === 'error') return `${actor} failed`;
  return eventType;
}

function guardLabel(guard: unknown, alternatives: number): string {
  if (typeof guard === 'string') return ` [${guard}]`;
  if (guard && typeof guard === 'object' && 'type' in guard) {
    const params =
      'params' in guard && guard.params !== undefined
        ? `(${typeof guard.params === 'string' ? guard.params : JSON.stringify(guard.params)})`
        : '';
    return ` [${String(guard.type)}${params}]`;
  }
  return alternatives > 1 ? ' [else]' : '';
}

function transitionLines(node: AnyStateNode, finals: AnyStateNode[]): string[] {
  const lines: string[] = [];
  for (const [eventType, alternatives] of node.transitions) {
    for (const t of alternatives) {
      const label = `${eventLabel(eventType)}${guardLabel(t.guard, alternatives.length)}`;
      const targets = t.target ?? [node];
      // a root transition (CANCEL) applies to every status that is not final
      const sources =
        node === blogMachine.root ? Object.values(node.states).filter((s) => !finals.includes(s)) : [node];
      for (const source of sources) {
        for (const target of targets) {
          if (source === target && node === blogMachine.root) continue;
          lines.push(`${idOf(source)} --> ${idOf(target)}: ${label}`);
        }
      }
    }
  }
  return lines;
}

function stateLines(node: AnyStateNode, indent: string): string[] {
  const children = Object.values(node.states);
  const lines = [`${indent}state "${node.key}" as ${idOf(node)}`];
  if (children.length === 0) return lines;
  lines[0] += ' {';
  const initial = node.initial?.target[0];
  if (initial) lines.push(`${indent}  [*] --> ${idOf(initial)}`);
  for (const child of children) lines.push(...stateLines(child, `${indent}  `));
  lines.push(`${indent}}`);
  return lines;
}

/** The machine as Mermaid text (ends with a newline). */
export function renderMermaid(): string {
  const root = blogMachine.root;
  const tops = Object.values(root.states);
  const finals = tops.filter((s) => s.type === 'final');
  const all = (n: AnyStateNode): AnyStateNode[] => [n, ...Object.values(n.states).flatMap(all)];
  const lines = ['stateDiagram-v2', `  [*] --> ${idOf(root.initial.target[0]!)}`];
  for (const top of tops) lines.push(...stateLines(top, '  '));
  for (const node of all(root)) lines.push(...transitionLines(node, finals).map((l) => `  ${l}`));
  for (const final of finals) lines.push(`  ${idOf(final)} --> [*]`);
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(DIAGRAM_PATH, renderMermaid());
  console.log(`wrote ${DIAGRAM_PATH}`);
}
