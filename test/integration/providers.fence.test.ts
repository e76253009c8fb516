/**
 * The composition root fences the real adapters' provider references by the runtime's own store leases, owner AND
 * epoch (issue 18), needs PostgreSQL. Built the way `npm start` builds it (composeRuntime, the real Wix adapter
 * against the fake Wix over HTTP): a publish for a store that its shards hold at epoch 1 while the lease row, still
 * naming this process, is at epoch 2 (the store was given back and taken again since that tenure began) cannot
 * write its pending-draft marker, so the draft is never created. Fenced by the owner's name alone (the wiring
 * before), the marker is written and Wix gets the draft.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { composeRuntime } from '../../src/app/compose';
import { loadConfig } from '../../src/config';
import { createBlogRepo } from '../../src/db/blog.repo';
import { createLeaseRepo } from '../../src/db/lease.repo';
import { openPostgres } from '../../src/db/pg.client';
import { newBlog } from '../support/blog.rows';
import { startFakeWix, type FakeWix } from '../support/fake.wix';
import { describeWithPostgres } from '../support/servers';

let fake: FakeWix;
beforeAll(async () => {
  fake = await startFakeWix();
});
afterAll(async () => {
  await fake.close();
});

await describeWithPostgres('provider references of a composed runtime (needs PostgreSQL)', (pg) => {
  it('refuses the reference writes of an ended tenure, though the lease row names this process', async () => {
    const migrated = openPostgres(pg().url, () => undefined, 2);
    await migrated.migrate();
    const config = loadConfig({
      DATABASE_URL: pg().url,
      INKWELL_NODE_ID: 'node-fence',
      INKWELL_LOG_LEVEL: 'silent',
      WIX_APP_ID: fake.appId,
      WIX_APP_SECRET: fake.appSecret,
      WIX_BASE_URL: fake.url,
      WIX_DEFAULT_MEMBER_ID: 'member-1',
    });
    const composed = await composeRuntime({ config, bus: 'memory' });
    try {
      const leases = createLeaseRepo(migrated.db, 'node-fence', 60_000);
      expect(await leases.claim('pf-1')).toMatchObject({ epoch: 1 });
      expect(await createBlogRepo(migrated.db).insert(newBlog('pf-blog', 'pf-1'))).toBe(true);
      composed.runtime.shards.take('pf-1', 1, Date.now()); // the tenure at epoch 1, its lease valid by our clock
      await leases.release(['pf-1']);
      expect(await leases.claim('pf-1')).toMatchObject({ held: true, epoch: 2 }); // same owner, a later tenure
      const publishing = composed.providers.publisher.publish({
        blogId: 'pf-blog',
        instanceId: 'pf-1',
        request: { topic: 't', keywords: [] },
        article: { title: 'Fenced', excerpt: 'e', markdown: '', html: '<p>x</p>' },
        attempt: 1,
        signal: new AbortController().signal,
      });
      await expect(publishing).rejects.toThrow(/not held here/);
      expect(fake.drafts('pf-1')).toEqual([]);
    } finally {
      await composed.runtime.stop().catch(() => undefined);
      await migrated.close();
    }
  }, 30_000);
});
