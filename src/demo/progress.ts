/** Terminal progress of the demo: a bar, counts per status and per store; redrawn in place on a TTY. */
import { BLOG_STATUSES, type BlogStatus } from '../../machines/blog.types';

/** What the progress view tracks of each blog. */
export interface Tracked {
  instanceId: string;
  status: BlogStatus;
  createdAt: number;
  finishedAt?: number;
}

const SHORT: Record<BlogStatus, string> = {
  PENDING: 'pending',
  GENERATING_IDEAS: 'ideas',
  AWAITING_SELECTION: 'select',
  GENERATING_CONTENT: 'content',
  GENERATING_IMAGE: 'image',
  PUBLISHING: 'publish',
  DONE: 'done',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? 0 : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

/** The lines of one frame. */
export function renderFrame(blogs: Map<string, Tracked>, elapsedMs: number): string[] {
  const all = [...blogs.values()];
  const finished = all.filter((b) => b.status === 'DONE' || b.status === 'FAILED' || b.status === 'CANCELLED');
  const counts = BLOG_STATUSES.map((s) => `${SHORT[s]} ${all.filter((b) => b.status === s).length}`);
  const stores = [...new Set(all.map((b) => b.instanceId))].sort();
  const perStore = stores.map((store) => {
    const mine = all.filter((b) => b.instanceId === store);
    return `${store} ${mine.filter((b) => b.status === 'DONE').length}/${mine.length}`;
  });
  return [
    `${bar(finished.length, all.length)}  ${(elapsedMs / 1000).toFixed(1)} s`,
    `  ${counts.join(' · ')}`,
    `  stores: ${perStore.join(' · ')}`,
  ];
}

/** Draws frames: in place on a TTY, else one line every `plainEveryMs`. */
export function createProgress(out: NodeJS.WriteStream, plainEveryMs = 2000) {
  let drawn = 0;
  let lastPlain = 0;
  return {
    draw(lines: string[], force = false) {
      if (out.isTTY) {
        if (drawn > 0) out.write(`\x1b[${drawn}A`);
        out.write(lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
        drawn = lines.length;
      } else if (force || Date.now() - lastPlain >= plainEveryMs) {
        lastPlain = Date.now();
        out.write(`${lines[0]?.trim()} |${lines[1]}\n`);
      }
    },
  };
}

/** The value at quantile `q` (0..1) of `values`, nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
