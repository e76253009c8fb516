/** Types of folder.cycles.mjs (plain JavaScript, run by `npm run check:folders`). */
export function folderOf(file: string): string;
export function folderCycles(graph: Record<string, string[]>): Array<{
  folders: string[];
  path: string[];
  imports: string[];
}>;
