/**
 * New blogs, batched: creates that arrive while an insert is in flight go out together in the next one (one
 * statement), so a burst of creates costs a few round trips and commits, not one each. A failed insert is not
 * retried here: its callers get the error (the command was not applied and is answered or redelivered). Each new
 * blog names the lease epoch of the store's tenure that created it (`NewBlog.epoch`), as transitions do.
 */
import type { BlogRepo, NewBlog } from '../db/blog.port';
import { ConflictError } from '../errors';

const MAX_BATCH = 500;

/** Returns `insert(blog)`: resolves `true` once created, `false` when the id exists already. */
export function createInsertBatcher(repo: Pick<BlogRepo, 'insertMany'>): (blog: NewBlog) => Promise<boolean> {
  const inserts: Array<{ blog: NewBlog; resolve: (created: boolean) => void; reject: (e: unknown) => void }> = [];
  let inserting = false;

  function settle(batch: typeof inserts, created: Set<string>, fenced: Set<string>) {
    // Within a batch only the first create of an id wins, as it would one after the other.
    const claimed = new Set<string>();
    for (const i of batch) {
      if (fenced.has(i.blog.blogId)) {
        i.reject(new ConflictError(`store ${i.blog.instanceId} is no longer held here: nothing was created`));
        continue;
      }
      const won = created.has(i.blog.blogId) && !claimed.has(i.blog.blogId);
      if (won) claimed.add(i.blog.blogId);
      i.resolve(won);
    }
  }

  function pump() {
    if (inserting || inserts.length === 0) return;
    const batch = inserts.splice(0, MAX_BATCH);
    inserting = true;
    const fenced = new Set<string>();
    repo
      .insertMany(
        batch.map((i) => i.blog),
        fenced,
      )
      .then(
        (created) => settle(batch, created, fenced),
        (error: unknown) => batch.forEach((i) => i.reject(error)),
      )
      .finally(() => {
        inserting = false;
        setImmediate(pump);
      });
  }

  return (blog) =>
    new Promise((resolve, reject) => {
      inserts.push({ blog, resolve, reject });
      setImmediate(pump);
    });
}
