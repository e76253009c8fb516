/** Provider references in the database: the `ProviderRefs` port over Drizzle. */
import { and, eq } from 'drizzle-orm';
import type { ProviderRefs } from '../providers/refs.port';
import type { Db } from './database';
import { providerRefs } from './schema';

/** Creates the repository over `db`. */
export function createRefsRepo(db: Db): ProviderRefs {
  return {
    async get(blogId, key) {
      const [row] = await db
        .select({ value: providerRefs.value })
        .from(providerRefs)
        .where(and(eq(providerRefs.blogId, blogId), eq(providerRefs.key, key)))
        .limit(1);
      // An empty value is a cleared reference.
      return row?.value ? row.value : undefined;
    },
    async put(blogId, key, value) {
      await db
        .insert(providerRefs)
        .values({ blogId, key, value })
        .onConflictDoUpdate({ target: [providerRefs.blogId, providerRefs.key], set: { value, updatedAt: new Date() } });
    },
  };
}
