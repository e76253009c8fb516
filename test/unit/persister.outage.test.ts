/**
 * A commit whose answer an outage lost (PostgreSQL stopped between committing and answering) may have landed. Its
 * retry then meets its own write as a version conflict: the persister must recognise it and go on, not drop the
 * blog as if another process had taken it (which left it stuck, never DONE).
 */
import { describe, expect, it } from 'vitest';
import type { BlogRepo, BlogRow, BlogWrite } from '../../src/db/blog.repo';
import { createPersister } from '../../src/runtime/persister';

/** Rows and outbox in memory, fenced by version like the real commit; `loseNextAnswer` commits, then throws. */
function memoryRepo() {
  const rows = new Map<string, { version: number; seq: number; status: string }>();
  const outbox = new Map<string, number[]>();
  let loseNextAnswer = false;
  const commit = async (writes: BlogWrite[]) => {
    const conflicts = new Set<string>();
    for (const w of writes) {
      const row = rows.get(w.blogId)!;
      if (row.version !== w.expectedVersion) {
        conflicts.add(w.blogId);
        continue;
      }
      rows.set(w.blogId, { version: row.version + 1, seq: w.seq, status: w.status });
      const seqs = outbox.get(w.blogId)!;
      for (const e of w.events) if (!seqs.includes(e.seq)) seqs.push(e.seq); // on conflict (blog_id, seq) do nothing
    }
    if (loseNextAnswer) {
      loseNextAnswer = false;
      throw new Error('Connection terminated unexpectedly');
    }
    return conflicts;
  };
  const getMany = async (ids: readonly string[]) =>
    ids.map((blogId) => ({ blogId, ...rows.get(blogId)! }) as unknown as BlogRow);
  return {
    repo: { commit, getMany } as unknown as BlogRepo,
    add: (blogId: string) => (rows.set(blogId, { version: 0, seq: 1, status: 'PENDING' }), outbox.set(blogId, [1])),
    loseNextAnswer: () => void (loseNextAnswer = true),
    rows,
    outbox,
  };
}

const write = (blogId: string, seq: number, status: string) => ({
  blogId,
  instanceId: 'store-1',
  status,
  seq,
  snapshot: { seq },
  machineVersion: 1,
  view: {},
  wakeAt: null,
});

describe('persister after a commit whose answer was lost', () => {
  it('recognises its own landed write, commits what came after, and drops nothing', async () => {
    const db = memoryRepo();
    db.add('b1');
    const conflicts: string[] = [];
    const persister = createPersister(db.repo, { onConflict: (id) => conflicts.push(id), onRetry: () => undefined });
    persister.track('b1', 0);
    db.loseNextAnswer();
    const first = persister.enqueue(write('b1', 2, 'GENERATING_CONTENT'), [{ seq: 2, payload: {} }]);
    await new Promise((r) => setTimeout(r, 20)); // the first commit landed, its answer lost; the retry waits
    const second = persister.enqueue(write('b1', 3, 'GENERATING_IMAGE'), [{ seq: 3, payload: {} }]);
    await Promise.all([first, second]);
    await persister.flush();
    expect(conflicts).toEqual([]);
    expect(db.rows.get('b1')).toMatchObject({ seq: 3, status: 'GENERATING_IMAGE' });
    expect(db.outbox.get('b1')).toEqual([1, 2, 3]);
  });

  it('still drops a blog another writer moved (a conflict with no lost answer before it)', async () => {
    const db = memoryRepo();
    db.add('b2');
    const conflicts: string[] = [];
    const persister = createPersister(db.repo, { onConflict: (id) => conflicts.push(id), onRetry: () => undefined });
    persister.track('b2', 0);
    db.rows.set('b2', { version: 1, seq: 2, status: 'GENERATING_IDEAS' }); // someone else wrote it
    await expect(persister.enqueue(write('b2', 2, 'GENERATING_CONTENT'), [])).rejects.toThrow('another writer');
    expect(conflicts).toEqual(['b2']);
  });
});
