/**
 * `npm run check:folders` (part of `npm run lint`): fails when folders import each other in a cycle. madge's file
 * graph is collapsed to folders: every file under `src/<folder>/` (at any depth) counts as `src/<folder>`, every file
 * under `machines/` as `machines`, and each file directly in `src/` (main.ts, config.ts, errors.ts, logger.ts) is a
 * node of its own. Any strongly connected set of two or more nodes is a cycle; it is printed with the file imports
 * that make it. Cycles between files are `npm run check:cycles`'s job.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The node a file (path relative to the repository) belongs to. */
export function folderOf(file) {
  const parts = file.split('/');
  if (parts[0] === 'src' && parts.length > 2) return `src/${parts[1]}`;
  if (parts[0] === 'src') return file;
  return parts.length > 1 ? parts[0] : file;
}

/**
 * The folder cycles of a file graph (`{ file: [imported files] }`, as madge's `obj()` gives it): one entry per
 * strongly connected set of folders (`folders`), with one shortest cycle through it (`path`, from its first folder
 * back to it) and the file imports that make each step of that cycle (`imports`).
 */
export function folderCycles(graph) {
  const edges = new Map();
  for (const [file, imports] of Object.entries(graph)) {
    const from = folderOf(file);
    if (!edges.has(from)) edges.set(from, new Map());
    for (const imported of imports) {
      const to = folderOf(imported);
      if (!edges.has(to)) edges.set(to, new Map());
      if (to === from) continue;
      const via = edges.get(from).get(to) ?? [];
      via.push(`${file} -> ${imported}`);
      edges.get(from).set(to, via);
    }
  }
  // Tarjan's strongly connected components.
  let index = 0;
  const order = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (node) => {
    order.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node).keys()) {
      if (!order.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node), low.get(next)));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node), order.get(next)));
    }
    if (low.get(node) !== order.get(node)) return;
    const component = [];
    for (let member; member !== node;) {
      member = stack.pop();
      onStack.delete(member);
      component.push(member);
    }
    if (component.length > 1) components.push(component.sort());
  };
  for (const node of [...edges.keys()].sort()) if (!order.has(node)) visit(node);
  return components.map((folders) => {
    const path = shortestCycle(edges, folders[0], folders);
    return { folders, path, imports: path.slice(1).flatMap((to, i) => edges.get(path[i]).get(to)) };
  });
}

/** The shortest path from `start` back to itself inside `members` (breadth first). */
function shortestCycle(edges, start, members) {
  const previous = new Map();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const next of edges.get(node).keys()) {
      if (!members.includes(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start];
}

async function main() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const { default: madge } = await import('madge');
  const result = await madge(['src', 'machines'], {
    baseDir: root,
    fileExtensions: ['ts'],
    tsConfig: path.join(root, 'tsconfig.json'),
  });
  const cycles = folderCycles(result.obj());
  if (cycles.length === 0) {
    console.log(`no import cycle between folders (${Object.keys(result.obj()).length} files)`);
    return;
  }
  for (const { folders, path: cycle, imports } of cycles) {
    console.error(`import cycle between folders ${folders.join(', ')}: ${cycle.join(' -> ')}, through`);
    for (const line of imports) console.error(`  ${line}`);
  }
  process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
