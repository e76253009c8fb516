/**
 * Publishes a blog to its store's Wix Blog: import the header image, convert the (re-sanitized) article html to
 * Ricos, create a draft with the author's `memberId`, publish it, read the post URL.
 *
 * At most once per blog, with durable refs written the moment Wix returns something:
 *  - `wix.post`          JSON `{ id, url? }`: published; a repeat returns it and calls nothing.
 *  - `wix.draft`         the draft id: a repeat publishes that draft again (harmless: same post).
 *  - `wix.draft.pending` JSON `{ title, memberId, at }`, written *before* the create call: if it exists without
 *                        `wix.draft`, a create may have succeeded with its answer lost, so the drafts are queried
 *                        by title and a match is reused instead of creating a second one.
 *  - `wix.media`         JSON of the imported image (`{ id, url, width?, height? }`); a duplicate import after a
 *                        lost answer only leaves an unused file in the Media Manager, never a visible duplicate.
 *
 * Each write is a database round trip and a commit, so writes that can wait share one (the refs repository batches
 * the puts of one turn into one statement): the media ref goes with the pending marker (or, when no create follows,
 * before the failure is reported), and the draft id with the post (or, when the publish fails, before that failure
 * is reported). Only a crash in between loses one: the media is then imported again, and a draft created but not
 * recorded is found by title through its pending marker, as after a lost create answer. So a normal publish writes
 * twice, not four times, and is still published at most once.
 */
import type { PublishedPost } from '../../machines/blog.types';
import { StageFailureError } from '../errors';
import { sanitizeHtml } from './html';
import type { PublishCall, Publisher } from './publisher.port';
import type { ProviderRefs, RefOwner } from '../db/refs.port';
import { displayNameFor, importedImage, isObject, parseJson, postUrl, type WixImage } from './wix.answers';
import { createWixClient, type WixClient, type WixLimit } from './wix.client';

export interface WixPublisherOptions {
  appId: string;
  appSecret: string;
  /** `WIX_BASE_URL`, e.g. `https://www.wixapis.com`. */
  baseUrl: string;
  refs: ProviderRefs;
  /** Author of posts whose request has no `authorMemberId` (third-party apps must give one). */
  defaultMemberId?: string;
  /** Per HTTP request; default 30 s. */
  timeoutMs?: number;
  /** Per-store Wix limits; every HTTP call runs inside it. Default: run directly. */
  limit?: WixLimit;
  /** Clock for token expiry; default `Date.now`. */
  now?: () => number;
  /** Tokens are replaced this long before expiry; default 5 minutes. */
  tokenMarginMs?: number;
}

/** Ref keys, per blog. */
export const WIX_REFS = {
  post: 'wix.post',
  draft: 'wix.draft',
  draftPending: 'wix.draft.pending',
  media: 'wix.media',
} as const;

/** How far back (before the pending marker) a found draft may have been created and still be ours (clock skew). */
const PENDING_SKEW_MS = 10 * 60_000;
const EXCERPT_MAX = 500;

type PendingDraft = { title: string; memberId: string; at: number };
type DraftSummary = { id?: unknown; title?: unknown; memberId?: unknown; createdDate?: unknown };

function badResponse(what: string, instanceId: string): StageFailureError {
  return new StageFailureError(
    'WIX_BAD_RESPONSE',
    `Wix answered "${what}" for store ${instanceId} without the expected fields`,
    true,
  );
}

/** What an earlier attempt recorded, by ref name. */
type KnownRefs = Partial<Record<keyof typeof WIX_REFS, string>>;

export function createWixPublisher(opts: WixPublisherOptions): Publisher {
  const client: WixClient = createWixClient(opts);
  const { refs } = opts;
  const now = opts.now ?? Date.now;

  /** Every ref of the blog, read at once (the reads of one turn share one statement: see refs.repo.ts). */
  async function readRefs(blogId: string): Promise<KnownRefs> {
    const names = Object.keys(WIX_REFS) as (keyof typeof WIX_REFS)[];
    const values = await Promise.all(names.map((name) => refs.get(blogId, WIX_REFS[name])));
    return Object.fromEntries(names.map((name, i) => [name, values[i]]));
  }

  /** A ref not written yet: it goes out with a later write (see the header). */
  type Unwritten = { key: string; value: string };
  const putAll = async (owner: RefOwner, list: (Unwritten | undefined)[]): Promise<void> => {
    // Called in one turn: the repository makes one statement of them.
    await Promise.all(list.flatMap((r) => (r ? [refs.put(owner, r.key, r.value)] : [])));
  };
  /** Records `list` before a failure is reported; a failed write only costs a repeat of what it recorded. */
  const putBeforeFailing = (owner: RefOwner, list: (Unwritten | undefined)[]): Promise<void> =>
    putAll(owner, list).catch(() => undefined);

  /** The header image in Wix (imported now, or by an earlier attempt), and its ref when not yet written. */
  type Imported = { image?: WixImage; ref?: Unwritten };

  async function importImage(call: PublishCall, known: KnownRefs): Promise<Imported> {
    const { image } = call;
    // Only absolute http(s) images can be imported; local (offline) images are skipped.
    if (!image || !/^https?:\/\//i.test(image.url)) return {};
    const stored = parseJson<WixImage>(known.media);
    if (stored?.id) return { image: stored };
    const what = 'import the header image';
    const body = await client.request(
      call.instanceId,
      {
        method: 'POST',
        path: '/site-media/v1/files/import',
        body: { url: image.url, mediaType: 'IMAGE', displayName: displayNameFor(call.article.title, image.url) },
        what,
      },
      call.signal,
    );
    const imported = importedImage(body);
    if (!imported) throw badResponse(what, call.instanceId);
    return { image: imported, ref: { key: WIX_REFS.media, value: JSON.stringify(imported) } };
  }

  async function toRicos(call: PublishCall): Promise<unknown> {
    const what = 'convert the article to rich content';
    // The article html is generated content: sanitized again right before it leaves.
    const body = await client.request(
      call.instanceId,
      {
        method: 'POST',
        path: '/ricos/v1/ricos-document/convert/to-ricos',
        body: { html: sanitizeHtml(call.article.html) },
        what,
      },
      call.signal,
    );
    const document = isObject(body) ? body['document'] : undefined;
    if (!isObject(document)) throw badResponse(what, call.instanceId);
    return document;
  }

  /** A draft an earlier attempt created but never heard back about: same title and author, created since. */
  async function findLostDraft(call: PublishCall, pending: PendingDraft): Promise<string | undefined> {
    const what = 'look for a draft an earlier attempt created';
    const body = await client.request(
      call.instanceId,
      {
        method: 'POST',
        path: '/blog/v3/draft-posts/query',
        body: { query: { filter: { title: { $eq: pending.title } }, paging: { limit: 100 } } },
        what,
      },
      call.signal,
    );
    const drafts =
      isObject(body) && Array.isArray(body['draftPosts']) ? (body['draftPosts'] as DraftSummary[]) : undefined;
    if (!drafts) throw badResponse(what, call.instanceId);
    const created = (d: DraftSummary): number =>
      typeof d.createdDate === 'string' ? Date.parse(d.createdDate) : Number.NaN;
    const matches = drafts
      .filter((d) => typeof d.id === 'string' && d.title === pending.title)
      .filter((d) => d.memberId === undefined || d.memberId === pending.memberId)
      .filter((d) => Number.isNaN(created(d)) || created(d) >= pending.at - PENDING_SKEW_MS)
      // The oldest match is the first attempt's; later strays (if any) stay unpublished drafts.
      .sort((a, b) => (created(a) || 0) - (created(b) || 0));
    return matches[0]?.id as string | undefined;
  }

  async function createDraft(
    call: PublishCall,
    memberId: string,
    { image, ref: media }: Imported,
    richContent: unknown,
  ): Promise<string> {
    const title = call.article.title;
    const pending: PendingDraft = { title, memberId, at: now() };
    const what = 'create the draft post';
    let started = false;
    const body = await client
      .request(
        call.instanceId,
        {
          // Written right before the call, once the limiter let it start: from then on a lost answer is looked for
          // instead of created again, and a call refused before it started (a lease run out) leaves no marker. The
          // media ref shares its statement.
          before: () => {
            started = true;
            return putAll(call, [{ key: WIX_REFS.draftPending, value: JSON.stringify(pending) }, media]);
          },
          method: 'POST',
          path: '/blog/v3/draft-posts',
          body: {
            draftPost: {
              title,
              excerpt: call.article.excerpt.slice(0, EXCERPT_MAX),
              memberId,
              richContent,
              ...(image ? { media: { wixMedia: { image }, displayed: true, custom: true } } : {}),
            },
            publish: false,
          },
          what,
        },
        call.signal,
      )
      .catch(async (error: unknown) => {
        if (!started) await putBeforeFailing(call, [media]);
        throw error;
      });
    const draft = isObject(body) && isObject(body['draftPost']) ? body['draftPost'] : undefined;
    if (typeof draft?.['id'] !== 'string') throw badResponse(what, call.instanceId);
    return draft['id'];
  }

  /** The draft to publish, and its ref when not yet written (it goes out with the post's). */
  async function draftFor(call: PublishCall, known: KnownRefs): Promise<{ id: string; ref?: Unwritten }> {
    if (known.draft) return { id: known.draft };
    const memberId = call.request.authorMemberId ?? opts.defaultMemberId;
    if (!memberId) {
      throw new StageFailureError(
        'MISSING_MEMBER_ID',
        `no Wix member to author the post for store ${call.instanceId}: give authorMemberId in the request or ` +
          'configure a default member id (Wix requires memberId for drafts created by apps)',
        false,
      );
    }
    const pending = parseJson<PendingDraft>(known.draftPending);
    if (pending && typeof pending.title === 'string') {
      const found = await findLostDraft(call, { ...pending, memberId: pending.memberId ?? memberId });
      if (found) return { id: found, ref: { key: WIX_REFS.draft, value: found } };
    }
    // Independent of each other: the import and the conversion go out together (one Wix round trip, not two).
    const [imported, converted] = await Promise.allSettled([importImage(call, known), toRicos(call)]);
    if (imported.status === 'rejected') throw imported.reason;
    if (converted.status === 'rejected') {
      await putBeforeFailing(call, [imported.value.ref]);
      throw converted.reason;
    }
    const id = await createDraft(call, memberId, imported.value, converted.value);
    return { id, ref: { key: WIX_REFS.draft, value: id } };
  }

  async function readUrl(call: PublishCall, postId: string): Promise<string | undefined> {
    try {
      const body = await client.request(
        call.instanceId,
        {
          method: 'GET',
          path: `/blog/v3/posts/${encodeURIComponent(postId)}?fieldsets=URL`,
          what: 'read the post URL',
        },
        call.signal,
      );
      return postUrl(body);
    } catch (error) {
      // The post is live: a missing URL is not worth failing (and re-running) the stage.
      if (error instanceof StageFailureError && error.code === 'ABORTED') throw error;
      return undefined;
    }
  }

  return {
    name: 'wix',
    async publish(call): Promise<PublishedPost> {
      const known = await readRefs(call.blogId);
      const done = parseJson<PublishedPost>(known.post);
      if (done?.id) return done.url ? { id: done.id, url: done.url } : { id: done.id };

      const draft = await draftFor(call, known);
      const what = 'publish the draft post';
      // Publishing an already-published draft updates the same post, so a repeat after a lost answer is safe.
      let postId: string;
      try {
        const body = await client.request(
          call.instanceId,
          { method: 'POST', path: `/blog/v3/draft-posts/${encodeURIComponent(draft.id)}/publish`, body: {}, what },
          call.signal,
        );
        const id = isObject(body) ? body['postId'] : undefined;
        if (typeof id !== 'string' || id === '') throw badResponse(what, call.instanceId);
        postId = id;
      } catch (error) {
        await putBeforeFailing(call, [draft.ref]);
        throw error;
      }

      const url = await readUrl(call, postId);
      const post: PublishedPost = url ? { id: postId, url } : { id: postId };
      await putAll(call, [draft.ref, { key: WIX_REFS.post, value: JSON.stringify(post) }]);
      return post;
    },
  };
}
