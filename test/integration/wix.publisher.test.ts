/**
 * The Wix publisher against a local fake Wix (test/support/fake.wix.ts): no external servers, always runs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Article, HeaderImage, PublishedPost } from '../../machines/blog.types';
import { LeaseExpiredError, StageFailureError } from '../../src/errors';
import type { PublishCall, Publisher } from '../../src/providers/publisher.port';
import type { ProviderRefs, RefOwner } from '../../src/db/refs.port';
import { createWixPublisher, WIX_REFS, type WixPublisherOptions } from '../../src/providers/wix.publisher';
import { startFakeWix, type FakeWix } from '../support/fake.wix';

const A = 'inst-aaaa';
const B = 'inst-bbbb';
const MEMBER = '8a8b9b73-4da8-47a5-8268-4396e68a0605';

/** Durable refs in memory, plus a peek for assertions. */
function memoryRefs(): ProviderRefs & { peek(blogId: string, key: string): string | undefined } {
  const map = new Map<string, string>();
  return {
    get: async (blogId, key) => map.get(`${blogId}\u0000${key}`),
    put: async ({ blogId }, key, value) => {
      map.set(`${blogId}\u0000${key}`, value);
    },
    peek: (blogId, key) => map.get(`${blogId}\u0000${key}`),
  };
}

const article = (title: string, html = '<h2>Part</h2><p>Body text.</p>'): Article => ({
  title,
  excerpt: `About ${title}`,
  markdown: '',
  html,
});

function call(
  blogId: string,
  instanceId: string,
  over: { article?: Article; image?: HeaderImage | null; memberId?: string | null; signal?: AbortSignal } = {},
): PublishCall {
  const image =
    over.image === null ? undefined : (over.image ?? { url: `https://img.example.com/${blogId}.png`, alt: 'x' });
  return {
    blogId,
    instanceId,
    request: {
      topic: 't',
      keywords: [],
      ...(over.memberId === null ? {} : { authorMemberId: over.memberId ?? MEMBER }),
    },
    article: over.article ?? article(`Post ${blogId}`),
    ...(image ? { image } : {}),
    attempt: 1,
    signal: over.signal ?? new AbortController().signal,
  };
}

/** `memoryRefs` that also lists the keys put in each turn of the event loop (the repository's one statement). */
function turnRefs() {
  const refs = memoryRefs();
  const turns: string[][] = [];
  let open: string[] | undefined;
  return {
    ...refs,
    turns,
    put: async (owner: RefOwner, key: string, value: string) => {
      if (!open) {
        const turn: string[] = [];
        open = turn;
        turns.push(turn);
        setImmediate(() => (open = undefined));
      }
      open.push(key);
      await refs.put(owner, key, value);
    },
  };
}

/** Resolves to the StageFailureError the promise rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<StageFailureError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StageFailureError);
    return error as StageFailureError;
  }
  throw new Error('expected a StageFailureError, but the call succeeded');
}

let fake: FakeWix;
let clock = Date.now();
const now = (): number => clock;

beforeEach(async () => {
  clock = Date.now();
  fake = await startFakeWix({ now });
});
afterEach(async () => {
  await fake.close();
});

function publisher(refs: ProviderRefs, over: Partial<WixPublisherOptions> = {}): Publisher {
  return createWixPublisher({ appId: fake.appId, appSecret: fake.appSecret, baseUrl: fake.url, refs, now, ...over });
}

const authorized = () => fake.requests.filter((r) => r.path !== '/oauth2/token');
const count = (method: string, path: string | RegExp) =>
  fake.requests.filter((r) => r.method === method && (typeof path === 'string' ? r.path === path : path.test(r.path)))
    .length;

describe('wix publisher: happy path', () => {
  it('imports the image, creates a draft with memberId, publishes and returns the post with its url', async () => {
    const refs = memoryRefs();
    const wix = publisher(refs);
    const post = await wix.publish(call('blog-1', A));

    expect(wix.name).toBe('wix');
    const [published] = fake.posts(A);
    expect(fake.posts(A)).toHaveLength(1);
    expect(post).toEqual({ id: published!.id, url: `https://${A}.wixsite.com/blog/post/post-blog-1` });
    expect(published!.memberId).toBe(MEMBER);
    expect(published!.title).toBe('Post blog-1');

    const [media] = fake.media(A);
    expect(media?.sourceUrl).toBe('https://img.example.com/blog-1.png');
    expect(media?.displayName).toBe('Post blog-1.png');
    expect(fake.drafts(A)[0]?.media).toMatchObject({ wixMedia: { image: { id: media!.id } } });
    expect(fake.drafts(A)[0]?.richContent).toMatchObject({ nodes: [{ type: 'PARAGRAPH' }] });

    expect(refs.peek('blog-1', WIX_REFS.draft)).toBe(fake.drafts(A)[0]?.id);
    expect(JSON.parse(refs.peek('blog-1', WIX_REFS.media)!)).toMatchObject({ id: media!.id });
    expect(JSON.parse(refs.peek('blog-1', WIX_REFS.post)!)).toEqual(post);
  });

  it('writes its refs in two turns: the media with the pending marker, the draft with the post', async () => {
    const refs = turnRefs();
    await publisher(refs).publish(call('blog-1', A));
    expect(refs.turns).toEqual([
      [WIX_REFS.draftPending, WIX_REFS.media],
      [WIX_REFS.draft, WIX_REFS.post],
    ]);
    expect(refs.peek('blog-1', WIX_REFS.draft)).toBe(fake.drafts(A)[0]?.id);
  });

  it('sends the bare token (no Bearer), fetches one token per store and caches it across publishes', async () => {
    const wix = publisher(memoryRefs());
    await wix.publish(call('blog-1', A));
    await wix.publish(call('blog-2', A));
    await Promise.all([wix.publish(call('blog-3', A)), wix.publish(call('blog-4', B)), wix.publish(call('blog-5', B))]);

    expect(fake.tokensIssued(A)).toBe(1);
    expect(fake.tokensIssued(B)).toBe(1);
    expect(fake.posts(A)).toHaveLength(3);
    expect(fake.posts(B)).toHaveLength(2);
    for (const r of authorized()) {
      expect(r.status).toBe(200);
      expect(r.authorization).toMatch(/^OAUTH2\./);
      expect(r.authorization).not.toMatch(/bearer/i);
    }
    const tokenRequest = fake.requests.find((r) => r.path === '/oauth2/token');
    expect(tokenRequest?.body).toEqual({
      grant_type: 'client_credentials',
      client_id: fake.appId,
      client_secret: fake.appSecret,
      instance_id: expect.any(String),
    });
  });

  it('returns the stored post on a repeat without calling Wix again', async () => {
    const refs = memoryRefs();
    const first = await publisher(refs).publish(call('blog-1', A));
    const before = fake.requests.length;
    const again = await publisher(refs).publish(call('blog-1', A));
    expect(again).toEqual(first);
    expect(fake.requests.length).toBe(before);
    expect(fake.posts(A)).toHaveLength(1);
  });

  it('skips relative (local) images and uses defaultMemberId when the request has none', async () => {
    const wix = publisher(memoryRefs(), { defaultMemberId: 'default-member' });
    await wix.publish(call('blog-1', A, { image: { url: 'images/blog-1.svg', alt: 'local' }, memberId: null }));
    expect(count('POST', '/site-media/v1/files/import')).toBe(0);
    expect(fake.drafts(A)[0]?.media).toBeUndefined();
    expect(fake.posts(A)[0]?.memberId).toBe('default-member');
  });

  it('sends sanitized html to the converter even when the article had <script> and onerror', async () => {
    const html =
      '<h2>Hi</h2><p>Text</p><script>alert(1)</script><img src="https://x.example/a.png" onerror="alert(2)">';
    await publisher(memoryRefs()).publish(call('blog-1', A, { article: article('Dangerous', html) }));
    const [sent] = fake.conversions(A);
    expect(sent).toContain('<h2>Hi</h2>');
    expect(sent).not.toMatch(/<script/i);
    expect(sent).not.toMatch(/onerror/i);
    expect(JSON.stringify(fake.requests.map((r) => r.body))).not.toMatch(/<script|onerror/i);
  });
});

describe('wix publisher: tokens', () => {
  it('refreshes a token before it expires (no 401 needed)', async () => {
    const wix = publisher(memoryRefs());
    await wix.publish(call('blog-1', A));
    clock += 4 * 60 * 60 * 1000 - 4 * 60 * 1000; // 4 minutes left: inside the 5-minute safety margin
    await wix.publish(call('blog-2', A));
    expect(fake.tokensIssued(A)).toBe(2);
    clock += 60 * 60 * 1000; // the old token is long dead; the new one is still good
    await wix.publish(call('blog-3', A));
    expect(fake.tokensIssued(A)).toBe(2);
    expect(fake.requests.filter((r) => r.status === 401)).toHaveLength(0);
  });

  it('after a 401 mid-flow, refreshes once and retries the call once', async () => {
    const wix = publisher(memoryRefs());
    await wix.publish(call('blog-1', A));
    fake.revokeTokens(A);
    const post = await wix.publish(call('blog-2', A));
    expect(post.id).toBe(fake.posts(A)[1]?.id);
    expect(fake.tokensIssued(A)).toBe(2);
    // The import and the conversion go out together: each meets the revoked token at most once, and they share
    // the one refresh.
    const refused = fake.requests.filter((r) => r.status === 401).map((r) => r.path);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(new Set(refused).size).toBe(refused.length);
  });

  it('a 401 that survives the refresh is WIX_AUTH, not retryable', async () => {
    fake.fault({ method: 'POST', path: '/blog/v3/draft-posts', kind: 'status', status: 401, times: 2 });
    const err = await failure(publisher(memoryRefs()).publish(call('blog-1', A)));
    expect(err.code).toBe('WIX_AUTH');
    expect(err.retryable).toBe(false);
    expect(fake.tokensIssued(A)).toBe(2);
    expect(count('POST', '/blog/v3/draft-posts')).toBe(2);
  });

  it('refused app credentials are WIX_AUTH and the secret never appears in the error', async () => {
    const refs = memoryRefs();
    const wix = createWixPublisher({ appId: fake.appId, appSecret: 'wrong-secret-value', baseUrl: fake.url, refs });
    const err = await failure(wix.publish(call('blog-1', A)));
    expect(err.code).toBe('WIX_AUTH');
    expect(err.retryable).toBe(false);
    expect(err.message).not.toContain('wrong-secret-value');
    expect(err.message).toContain(A);
  });
});

describe('wix publisher: at most once', () => {
  it('a lost answer after the draft was created: the retry finds that draft, one post in the end', async () => {
    const refs = memoryRefs();
    fake.fault({ method: 'POST', path: '/blog/v3/draft-posts', kind: 'lose' });
    const err = await failure(publisher(refs).publish(call('blog-1', A)));
    expect(err.retryable).toBe(true);
    expect(fake.drafts(A)).toHaveLength(1);
    expect(fake.posts(A)).toHaveLength(0);
    expect(refs.peek('blog-1', WIX_REFS.draft)).toBeUndefined();
    expect(refs.peek('blog-1', WIX_REFS.draftPending)).toBeDefined();

    // A new adapter (a restarted process) with the same durable refs.
    const post = await publisher(refs).publish(call('blog-1', A));
    expect(count('POST', '/blog/v3/draft-posts/query')).toBe(1);
    expect(fake.drafts(A)).toHaveLength(1);
    expect(fake.posts(A)).toHaveLength(1);
    expect(post.id).toBe(fake.posts(A)[0]?.id);
    expect(refs.peek('blog-1', WIX_REFS.draft)).toBe(fake.drafts(A)[0]?.id);
  });

  it('does not reuse a same-titled draft of another author', async () => {
    const refs = memoryRefs();
    await publisher(memoryRefs()).publish(
      call('other', A, { article: article('Same title'), memberId: 'someone-else' }),
    );
    fake.fault({ method: 'POST', path: '/blog/v3/draft-posts', kind: 'status', status: 503 });
    await failure(publisher(refs).publish(call('blog-1', A, { article: article('Same title') })));
    await publisher(refs).publish(call('blog-1', A, { article: article('Same title') }));
    expect(fake.drafts(A)).toHaveLength(2);
    expect(
      fake
        .posts(A)
        .map((p) => p.memberId)
        .sort(),
    ).toEqual([MEMBER, 'someone-else'].sort());
  });

  it('a lost answer after publish: the retry does not create a second post', async () => {
    const refs = memoryRefs();
    fake.fault({ method: 'POST', path: /^\/blog\/v3\/draft-posts\/[^/]+\/publish$/, kind: 'lose' });
    const err = await failure(publisher(refs).publish(call('blog-1', A)));
    expect(err.code).toBe('WIX_NETWORK');
    expect(err.retryable).toBe(true);
    expect(fake.posts(A)).toHaveLength(1);
    expect(refs.peek('blog-1', WIX_REFS.post)).toBeUndefined();

    // The draft id was recorded before the failure was reported: the retry publishes it without looking for it.
    expect(refs.peek('blog-1', WIX_REFS.draft)).toBe(fake.drafts(A)[0]?.id);

    const post = await publisher(refs).publish(call('blog-1', A));
    expect(fake.posts(A)).toHaveLength(1);
    expect(fake.drafts(A)).toHaveLength(1);
    expect(post.id).toBe(fake.posts(A)[0]?.id);
    expect(count('POST', '/blog/v3/draft-posts')).toBe(1);
    expect(count('POST', '/blog/v3/draft-posts/query')).toBe(0);
    expect(count('POST', '/site-media/v1/files/import')).toBe(1);
  });

  it('a crash after the draft was created, before its id was recorded: the retry finds it, one post', async () => {
    const refs = memoryRefs();
    // The process "dies" before the draft's and the post's refs are durable: those writes never land.
    const dying: ProviderRefs = {
      get: refs.get,
      put: (blogId, key, value) =>
        key === WIX_REFS.draft || key === WIX_REFS.post
          ? Promise.reject(new Error('process killed'))
          : refs.put(blogId, key, value),
    };
    await expect(publisher(dying).publish(call('blog-1', A))).rejects.toThrow('process killed');
    expect(fake.posts(A)).toHaveLength(1);
    expect(refs.peek('blog-1', WIX_REFS.draft)).toBeUndefined();

    const post = await publisher(refs).publish(call('blog-1', A));
    expect(count('POST', '/blog/v3/draft-posts/query')).toBe(1);
    expect(count('POST', '/blog/v3/draft-posts')).toBe(1);
    expect(count('POST', '/site-media/v1/files/import')).toBe(1);
    expect(fake.drafts(A)).toHaveLength(1);
    expect(fake.posts(A)).toHaveLength(1);
    expect(post.id).toBe(fake.posts(A)[0]?.id);
  });

  it('a conversion that fails after the import still records the image: the retry imports nothing again', async () => {
    const refs = memoryRefs();
    fake.fault({ path: '/ricos/v1/ricos-document/convert/to-ricos', kind: 'status', status: 503 });
    await failure(publisher(refs).publish(call('blog-1', A)));
    expect(JSON.parse(refs.peek('blog-1', WIX_REFS.media)!)).toMatchObject({ id: fake.media(A)[0]?.id });
    await publisher(refs).publish(call('blog-1', A));
    expect(count('POST', '/site-media/v1/files/import')).toBe(1);
    expect(fake.posts(A)).toHaveLength(1);
  });

  it('a create refused before it started (lease run out) records the image but no pending marker', async () => {
    const refs = memoryRefs();
    // The token, the import and the conversion pass; the fourth call, the create, is refused by the limiter.
    let calls = 0;
    const limit = <T>(instanceId: string, fn: () => Promise<T>): Promise<T> =>
      ++calls === 4 ? Promise.reject(new LeaseExpiredError(instanceId)) : fn();
    await expect(publisher(refs, { limit }).publish(call('blog-1', A))).rejects.toBeInstanceOf(LeaseExpiredError);
    expect(count('POST', '/blog/v3/draft-posts')).toBe(0);
    expect(refs.peek('blog-1', WIX_REFS.draftPending)).toBeUndefined();
    expect(JSON.parse(refs.peek('blog-1', WIX_REFS.media)!)).toMatchObject({ id: fake.media(A)[0]?.id });
    await publisher(refs).publish(call('blog-1', A));
    expect(count('POST', '/site-media/v1/files/import')).toBe(1);
    expect(count('POST', '/blog/v3/draft-posts/query')).toBe(0);
    expect(fake.posts(A)).toHaveLength(1);
  });
});

describe('wix publisher: errors', () => {
  it('429 is retryable and carries Retry-After', async () => {
    fake.fault({ method: 'POST', path: '/blog/v3/draft-posts', kind: 'status', status: 429, retryAfter: '7' });
    const err = await failure(publisher(memoryRefs()).publish(call('blog-1', A)));
    expect(err).toMatchObject({ code: 'WIX_RATE_LIMITED', retryable: true, retryAfterMs: 7000 });
  });

  it('429 with an HTTP-date Retry-After', async () => {
    const at = new Date(clock + 30_000).toUTCString();
    fake.fault({ path: '/site-media/v1/files/import', kind: 'status', status: 429, retryAfter: at });
    const err = await failure(publisher(memoryRefs()).publish(call('blog-1', A)));
    expect(err.code).toBe('WIX_RATE_LIMITED');
    expect(err.retryAfterMs).toBeGreaterThan(25_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it.each([
    [500, 'WIX_UNAVAILABLE', true],
    [503, 'WIX_UNAVAILABLE', true],
    [400, 'WIX_BAD_REQUEST', false],
    [403, 'WIX_FORBIDDEN', false],
    [404, 'WIX_NOT_FOUND', false],
  ] as const)('HTTP %i → %s (retryable: %s)', async (status, code, retryable) => {
    fake.fault({ path: '/ricos/v1/ricos-document/convert/to-ricos', kind: 'status', status, message: 'nope' });
    const err = await failure(publisher(memoryRefs()).publish(call('blog-1', A)));
    expect(err.code).toBe(code);
    expect(err.retryable).toBe(retryable);
    expect(err.message).toContain('nope');
    expect(fake.drafts(A)).toHaveLength(0);
  });

  it('500 on the token endpoint is retryable too', async () => {
    fake.fault({ path: '/oauth2/token', kind: 'status', status: 500 });
    const wix = publisher(memoryRefs());
    const err = await failure(wix.publish(call('blog-1', A)));
    expect(err).toMatchObject({ code: 'WIX_UNAVAILABLE', retryable: true });
    await wix.publish(call('blog-1', A)); // the failed token request is not cached
    expect(fake.posts(A)).toHaveLength(1);
  });

  it('a slow answer is a retryable WIX_TIMEOUT', async () => {
    fake.fault({ path: '/ricos/v1/ricos-document/convert/to-ricos', kind: 'slow', delayMs: 600 });
    const err = await failure(publisher(memoryRefs(), { timeoutMs: 150 }).publish(call('blog-1', A)));
    expect(err).toMatchObject({ code: 'WIX_TIMEOUT', retryable: true });
  });

  it('an aborted call is ABORTED, not retryable', async () => {
    const controller = new AbortController();
    fake.fault({ path: '/ricos/v1/ricos-document/convert/to-ricos', kind: 'slow', delayMs: 400 });
    const pending = publisher(memoryRefs()).publish(call('blog-1', A, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    const err = await failure(pending);
    expect(err).toMatchObject({ code: 'ABORTED', retryable: false });
  });

  it('no memberId anywhere → MISSING_MEMBER_ID, not retryable, nothing created', async () => {
    const err = await failure(publisher(memoryRefs()).publish(call('blog-1', A, { memberId: null })));
    expect(err.code).toBe('MISSING_MEMBER_ID');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/authorMemberId/);
    expect(fake.drafts(A)).toHaveLength(0);
    expect(fake.media(A)).toHaveLength(0);
  });
});

describe('wix publisher: stores and limits', () => {
  it('store isolation: each store only ever sees its own token and its own posts', async () => {
    const seen: string[] = [];
    const limit = <T>(instanceId: string, fn: () => Promise<T>): Promise<T> => {
      seen.push(instanceId);
      return fn();
    };
    const wix = publisher(memoryRefs(), { limit });
    const jobs: Promise<PublishedPost>[] = [];
    for (let i = 0; i < 3; i++) {
      jobs.push(wix.publish(call(`a-${i}`, A)), wix.publish(call(`b-${i}`, B)));
    }
    await Promise.all(jobs);

    expect(
      fake
        .posts(A)
        .map((p) => p.title)
        .sort(),
    ).toEqual(['Post a-0', 'Post a-1', 'Post a-2']);
    expect(
      fake
        .posts(B)
        .map((p) => p.title)
        .sort(),
    ).toEqual(['Post b-0', 'Post b-1', 'Post b-2']);
    // Every call went through the limiter under the store it was for.
    expect(seen.length).toBe(fake.requests.length);
    expect(seen.filter((s) => s === A).length).toBe(fake.requests.filter((r) => r.instanceId === A).length);
    // Every call used a token issued for its own store.
    for (const r of authorized()) expect(fake.tokenInstance(r.authorization!)).toBe(r.instanceId);
    const tokensOf = (id: string) =>
      new Set(
        authorized()
          .filter((r) => r.instanceId === id)
          .map((r) => r.authorization),
      );
    expect(tokensOf(A).size).toBe(1);
    expect([...tokensOf(A)].some((t) => tokensOf(B).has(t))).toBe(false);
  });

  it('a per-store limiter with concurrency 1 keeps one request in flight per store', async () => {
    const chains = new Map<string, Promise<unknown>>();
    const limit = <T>(instanceId: string, fn: () => Promise<T>): Promise<T> => {
      const run = (chains.get(instanceId) ?? Promise.resolve()).catch(() => undefined).then(fn);
      chains.set(instanceId, run);
      return run;
    };
    const wix = publisher(memoryRefs(), { limit });
    await Promise.all([0, 1, 2].flatMap((i) => [wix.publish(call(`a-${i}`, A)), wix.publish(call(`b-${i}`, B))]));
    expect(fake.posts(A)).toHaveLength(3);
    expect(fake.posts(B)).toHaveLength(3);
    expect(fake.maxInFlight(A)).toBe(1);
    expect(fake.maxInFlight(B)).toBe(1);
  });
});

describe('fake wix is strict', () => {
  it('rejects a Bearer prefix, unknown tokens and drafts without memberId', async () => {
    const tokenRes = await fetch(`${fake.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'client_credentials',
        client_id: fake.appId,
        client_secret: fake.appSecret,
        instance_id: A,
      }),
    });
    const { access_token: token } = (await tokenRes.json()) as { access_token: string };
    const draft = (authorization: string, draftPost: object) =>
      fetch(`${fake.url}/blog/v3/draft-posts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ draftPost, publish: false }),
      });
    expect((await draft(`Bearer ${token}`, { title: 't', memberId: MEMBER })).status).toBe(401);
    expect((await draft('OAUTH2.unknown', { title: 't', memberId: MEMBER })).status).toBe(401);
    expect((await draft(token, { title: 't' })).status).toBe(400);
    expect((await draft(token, { title: 't', memberId: MEMBER })).status).toBe(200);
    clock += 4 * 60 * 60 * 1000;
    expect((await draft(token, { title: 't', memberId: MEMBER })).status).toBe(401);
  });
});
