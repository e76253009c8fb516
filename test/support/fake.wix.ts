/**
 * A fake Wix REST server for tests (node:http on 127.0.0.1, port 0), following the public API shapes:
 *   POST /oauth2/token                              client_credentials per instance_id → { access_token, expires_in }
 *   POST /site-media/v1/files/import                { url, mediaType, displayName } → { file }
 *   POST /ricos/v1/ricos-document/convert/to-ricos  { html | markdown } → { document }
 *   POST /blog/v3/draft-posts                       { draftPost, publish } → { draftPost }
 *   POST /blog/v3/draft-posts/query                 { query: { filter: { title: { $eq } } } } → { draftPosts }
 *   POST /blog/v3/draft-posts/{id}/publish          → { postId } (repeating it returns the same post)
 *   GET  /blog/v3/posts/{id}                        → { post: { id, url: { base, path } } }
 * State is per instance (the token decides which store a call touches, as on Wix). Checks are strict: the
 * `Authorization` header must be the bare token (a `Bearer` prefix is a 401), unknown or expired tokens are 401,
 * a draft without `memberId` is 400. Faults are scripted per test with `fault()`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeWixOptions {
  appId?: string;
  appSecret?: string;
  /** Lifetime of issued tokens, seconds (Wix: 4 hours). */
  tokenTtlSec?: number;
  /** The server's clock, for token expiry and dates. */
  now?: () => number;
  /** Every request is answered this long after it arrived (a remote service's round trip); default 0. */
  latencyMs?: number | ((path: string, body: unknown) => number);
}

/** One request as the server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The store the call was for: from the token, or `instance_id` of a token request. */
  instanceId?: string;
  authorization?: string;
  body: unknown;
  status?: number;
  startedAt: number;
  endedAt?: number;
}

export type FaultKind =
  | { kind: 'status'; status: number; retryAfter?: string; message?: string }
  | { kind: 'slow'; delayMs: number }
  /** Do the work (create the draft, publish, ...), then destroy the socket without answering. */
  | { kind: 'lose' };

export type Fault = FaultKind & {
  method?: string;
  /** Matched against the path (without the query string). */
  path: string | RegExp;
  instanceId?: string;
  /** How many matching requests it affects; default 1. */
  times?: number;
};

export interface FakeDraft {
  id: string;
  title: string;
  excerpt?: string;
  memberId: string;
  richContent: unknown;
  media?: unknown;
  status: 'UNPUBLISHED' | 'PUBLISHED';
  createdDate: string;
  postId?: string;
}

export interface FakePost {
  id: string;
  draftPostId: string;
  title: string;
  memberId: string;
  richContent: unknown;
  media?: unknown;
  slug: string;
  firstPublishedDate: string;
}

export interface FakeMedia {
  id: string;
  sourceUrl: string;
  displayName: string;
  url: string;
}

interface InstanceState {
  drafts: Map<string, FakeDraft>;
  posts: Map<string, FakePost>;
  media: Map<string, FakeMedia>;
  /** Every html or markdown sent to the converter, in order. */
  conversions: string[];
  tokensIssued: number;
}

export interface FakeWix {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  readonly appId: string;
  readonly appSecret: string;
  requests: RecordedRequest[];
  /** Published posts of a store. */
  posts(instanceId: string): FakePost[];
  drafts(instanceId: string): FakeDraft[];
  media(instanceId: string): FakeMedia[];
  conversions(instanceId: string): string[];
  tokensIssued(instanceId: string): number;
  /** Which store a token was issued for. */
  tokenInstance(token: string): string | undefined;
  /** Invalidates every token of a store (as if revoked): its next call gets a 401. */
  revokeTokens(instanceId: string): void;
  setTokenTtl(seconds: number): void;
  /** Scripts a fault for the next matching request(s). */
  fault(fault: Fault): void;
  /** Largest number of requests of one store in flight at once (an abandoned one ends when the client gave up). */
  maxInFlight(instanceId: string): number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = 'ERROR',
  ) {
    super(message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const newId = (): string => {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
const slugify = (title: string): string =>
  title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60) || 'post';

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeWix(opts: FakeWixOptions = {}): Promise<FakeWix> {
  const appId = opts.appId ?? 'app-test-id';
  const appSecret = opts.appSecret ?? 'app-test-secret-DO-NOT-LOG';
  const now = opts.now ?? Date.now;
  let tokenTtlSec = opts.tokenTtlSec ?? 4 * 60 * 60;

  const instances = new Map<string, InstanceState>();
  const tokens = new Map<string, { instanceId: string; expiresAt: number; revoked: boolean }>();
  const faults: (Fault & { left: number })[] = [];
  const requests: RecordedRequest[] = [];
  /** Requests per store (flight key) with when they started and ended, for `maxInFlight`. */
  const flights = new Map<string, Array<{ start: number; end?: number; abandoned?: boolean }>>();

  const state = (instanceId: string): InstanceState => {
    let s = instances.get(instanceId);
    if (!s) {
      s = { drafts: new Map(), posts: new Map(), media: new Map(), conversions: [], tokensIssued: 0 };
      instances.set(instanceId, s);
    }
    return s;
  };

  const takeFault = (method: string, path: string, instanceId: string | undefined): FaultKind | undefined => {
    const index = faults.findIndex(
      (f) =>
        f.left > 0 &&
        (!f.method || f.method.toUpperCase() === method) &&
        (typeof f.path === 'string' ? f.path === path : f.path.test(path)) &&
        (!f.instanceId || f.instanceId === instanceId),
    );
    const fault = faults[index];
    if (!fault) return undefined;
    fault.left -= 1;
    if (fault.left <= 0) faults.splice(index, 1);
    return fault;
  };

  /** The store of an authorized call, or a 401 exactly as strict as Wix. */
  const authorize = (req: IncomingMessage): string => {
    const header = req.headers.authorization;
    if (!header) throw new HttpError(401, 'missing Authorization header', 'UNAUTHENTICATED');
    if (/^bearer\s/i.test(header)) throw new HttpError(401, 'send the bare token, without "Bearer"', 'UNAUTHENTICATED');
    const token = tokens.get(header);
    if (!token || token.revoked) throw new HttpError(401, 'unknown or revoked token', 'UNAUTHENTICATED');
    if (now() >= token.expiresAt) throw new HttpError(401, 'token expired', 'UNAUTHENTICATED');
    return token.instanceId;
  };

  const issueToken = (body: unknown): { instanceId: string; answer: unknown } => {
    if (!isObject(body) || body['grant_type'] !== 'client_credentials')
      throw new HttpError(400, 'grant_type must be client_credentials', 'INVALID_GRANT');
    if (body['client_id'] !== appId || body['client_secret'] !== appSecret)
      throw new HttpError(401, 'invalid client credentials', 'INVALID_CLIENT');
    const instanceId = body['instance_id'];
    if (typeof instanceId !== 'string' || instanceId === '') throw new HttpError(400, 'instance_id is required');
    const token = `OAUTH2.${randomBytes(24).toString('base64url')}`;
    tokens.set(token, { instanceId, expiresAt: now() + tokenTtlSec * 1000, revoked: false });
    state(instanceId).tokensIssued += 1;
    return { instanceId, answer: { access_token: token, token_type: 'Bearer', expires_in: tokenTtlSec } };
  };

  /** Performs an authorized call; returns the JSON answer. */
  const handle = (instanceId: string, method: string, path: string, body: unknown, query: URLSearchParams): unknown => {
    const s = state(instanceId);
    const at = new Date(now()).toISOString();
    if (method === 'POST' && path === '/site-media/v1/files/import') {
      if (!isObject(body) || typeof body['url'] !== 'string' || !/^https?:\/\//.test(body['url']))
        throw new HttpError(400, 'url must be an absolute http(s) URL');
      if (body['mediaType'] !== undefined && body['mediaType'] !== 'IMAGE')
        throw new HttpError(400, 'only IMAGE is supported here');
      const id = `${randomBytes(6).toString('hex')}_${randomBytes(12).toString('hex')}~mv2.jpg`;
      const url = `https://static.wixstatic.com/media/${id}`;
      const displayName = typeof body['displayName'] === 'string' ? body['displayName'] : 'file';
      s.media.set(id, { id, sourceUrl: body['url'], displayName, url });
      return {
        file: {
          id,
          displayName,
          url,
          mediaType: 'IMAGE',
          operationStatus: 'PENDING',
          media: { image: { image: { id, url, width: 1200, height: 630 } } },
        },
      };
    }
    if (method === 'POST' && path === '/ricos/v1/ricos-document/convert/to-ricos') {
      const source = isObject(body) ? (body['html'] ?? body['markdown'] ?? body['plainText']) : undefined;
      if (typeof source !== 'string') throw new HttpError(400, 'one of html, markdown, plainText is required');
      s.conversions.push(source);
      const text = source
        .replace(/<[^>]*>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();
      return {
        document: {
          nodes: [
            {
              type: 'PARAGRAPH',
              id: randomBytes(3).toString('hex'),
              nodes: [{ type: 'TEXT', id: '', nodes: [], textData: { text, decorations: [] } }],
              paragraphData: {},
            },
          ],
        },
      };
    }
    if (method === 'POST' && path === '/blog/v3/draft-posts/query') {
      const filter = isObject(body) && isObject(body['query']) ? body['query']['filter'] : undefined;
      const titleFilter = isObject(filter) ? filter['title'] : undefined;
      const title = isObject(titleFilter) ? titleFilter['$eq'] : titleFilter;
      const drafts = [...s.drafts.values()].filter((d) => title === undefined || d.title === title);
      return {
        draftPosts: drafts.map((d) => ({ ...d, postId: undefined })),
        pagingMetadata: { count: drafts.length, offset: 0, total: drafts.length },
      };
    }
    if (method === 'POST' && path === '/blog/v3/draft-posts') {
      const draft = isObject(body) && isObject(body['draftPost']) ? body['draftPost'] : undefined;
      if (!draft) throw new HttpError(400, 'draftPost is required');
      if (typeof draft['memberId'] !== 'string' || draft['memberId'] === '')
        throw new HttpError(400, 'Missing post owner information', 'MISSING_POST_OWNER');
      if (typeof draft['title'] !== 'string' || draft['title'] === '') throw new HttpError(400, 'title is required');
      if (
        draft['richContent'] !== undefined &&
        !(isObject(draft['richContent']) && Array.isArray(draft['richContent']['nodes']))
      )
        throw new HttpError(400, 'richContent must be a Ricos document');
      const media = draft['media'];
      if (isObject(media) && isObject(media['wixMedia']) && isObject(media['wixMedia']['image'])) {
        const imageId = media['wixMedia']['image']['id'];
        if (typeof imageId !== 'string' || !s.media.has(imageId)) throw new HttpError(400, 'unknown media id');
      }
      if (isObject(body) && body['publish'] === true) throw new HttpError(400, 'this fake only creates drafts');
      const created: FakeDraft = {
        id: newId(),
        title: draft['title'],
        memberId: draft['memberId'],
        richContent: draft['richContent'],
        status: 'UNPUBLISHED',
        createdDate: at,
        ...(typeof draft['excerpt'] === 'string' ? { excerpt: draft['excerpt'] } : {}),
        ...(media !== undefined ? { media } : {}),
      };
      s.drafts.set(created.id, created);
      return { draftPost: { ...created, postId: undefined } };
    }
    const publish = /^\/blog\/v3\/draft-posts\/([^/]+)\/publish$/.exec(path);
    if (method === 'POST' && publish) {
      const draft = s.drafts.get(decodeURIComponent(publish[1] ?? ''));
      if (!draft) throw new HttpError(404, 'draft post not found', 'DRAFT_POST_NOT_FOUND');
      if (!draft.postId) {
        const post: FakePost = {
          id: draft.id,
          draftPostId: draft.id,
          title: draft.title,
          memberId: draft.memberId,
          richContent: draft.richContent,
          slug: slugify(draft.title),
          firstPublishedDate: at,
          ...(draft.media !== undefined ? { media: draft.media } : {}),
        };
        s.posts.set(post.id, post);
        draft.postId = post.id;
        draft.status = 'PUBLISHED';
      }
      return { postId: draft.postId };
    }
    const getPost = /^\/blog\/v3\/posts\/([^/]+)$/.exec(path);
    if (method === 'GET' && getPost) {
      const post = s.posts.get(decodeURIComponent(getPost[1] ?? ''));
      if (!post) throw new HttpError(404, 'post not found', 'POST_NOT_FOUND');
      const withUrl = query.getAll('fieldsets').includes('URL');
      return {
        post: {
          id: post.id,
          title: post.title,
          memberId: post.memberId,
          slug: post.slug,
          firstPublishedDate: post.firstPublishedDate,
          ...(withUrl ? { url: { base: `https://${instanceId}.wixsite.com/blog`, path: `/post/${post.slug}` } } : {}),
        },
      };
    }
    throw new HttpError(404, `no route ${method} ${path}`, 'NOT_FOUND');
  };

  const server = createServer((req, res) => {
    void serve(req, res);
  });

  const send = (res: ServerResponse, rec: RecordedRequest, status: number, body: unknown, headers = {}): void => {
    rec.status = status;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const parsed = new URL(req.url ?? '/', 'http://fake.wix');
    const path = parsed.pathname;
    const rec: RecordedRequest = { method, path, body: undefined, startedAt: Date.now() };
    if (req.headers.authorization) rec.authorization = req.headers.authorization;
    requests.push(rec);
    let flightKey: string | undefined;
    let flight: { start: number; end?: number; abandoned?: boolean } | undefined;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      rec.endedAt ??= Date.now();
      if (flight) {
        flight.end = performance.now();
        flight.abandoned = !res.writableEnded; // the client gave up (a timeout) before the answer
      }
    };
    // A request is in flight while its connection is open: a client that gave up (timeout) has ended it.
    res.once('close', finish);
    try {
      const text = await readBody(req);
      let body: unknown = undefined;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'body is not JSON');
        }
      }
      rec.body = body;
      const isToken = method === 'POST' && path === '/oauth2/token';
      if (isToken && isObject(body) && typeof body['instance_id'] === 'string') rec.instanceId = body['instance_id'];
      if (!isToken) {
        const token = req.headers.authorization ? tokens.get(req.headers.authorization) : undefined;
        if (token) rec.instanceId = token.instanceId;
      }
      flightKey = rec.instanceId ?? '';
      flight = { start: performance.now() };
      const list = flights.get(flightKey) ?? [];
      list.push(flight);
      flights.set(flightKey, list);

      const fault = takeFault(method, path, rec.instanceId);
      if (fault?.kind === 'status') {
        const headers = fault.retryAfter !== undefined ? { 'retry-after': fault.retryAfter } : {};
        send(res, rec, fault.status, { message: fault.message ?? `injected ${fault.status}`, details: {} }, headers);
        return;
      }
      if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs));
      const latency = typeof opts.latencyMs === 'function' ? opts.latencyMs(path, body) : opts.latencyMs;
      if (latency) await new Promise((r) => setTimeout(r, latency));

      let answer: unknown;
      if (isToken) {
        answer = issueToken(body).answer;
      } else {
        const instanceId = authorize(req);
        answer = handle(instanceId, method, path, body, parsed.searchParams);
      }
      if (fault?.kind === 'lose') {
        // The work is done; the answer never arrives.
        rec.status = 0;
        req.socket.destroy();
        return;
      }
      send(res, rec, 200, answer);
    } catch (error) {
      const e = error instanceof HttpError ? error : new HttpError(500, String(error));
      if (!res.headersSent && !res.destroyed)
        send(res, rec, e.status, {
          message: e.message,
          details: { applicationError: { code: e.code, description: e.message } },
        });
    } finally {
      finish();
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    appId,
    appSecret,
    requests,
    posts: (instanceId) => [...(instances.get(instanceId)?.posts.values() ?? [])],
    drafts: (instanceId) => [...(instances.get(instanceId)?.drafts.values() ?? [])],
    media: (instanceId) => [...(instances.get(instanceId)?.media.values() ?? [])],
    conversions: (instanceId) => [...(instances.get(instanceId)?.conversions ?? [])],
    tokensIssued: (instanceId) => instances.get(instanceId)?.tokensIssued ?? 0,
    tokenInstance: (token) => tokens.get(token)?.instanceId,
    revokeTokens(instanceId) {
      for (const t of tokens.values()) if (t.instanceId === instanceId) t.revoked = true;
    },
    setTokenTtl(seconds) {
      tokenTtlSec = seconds;
    },
    fault(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    maxInFlight: (instanceId) => maxOverlap(flights.get(instanceId) ?? []),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * A server hears that a client gave up on a request (its timeout) only when the connection's close reaches it, which
 * on a busy machine can come after the client's next request to the same store. Such a request counts as ended this
 * much earlier than the server noticed: the trip, as the OpenAI window check allows 50 ms for it.
 */
const ABANDON_NOTICE_MS = 50;

/** The most requests that overlapped in time. */
function maxOverlap(list: Array<{ start: number; end?: number; abandoned?: boolean }>): number {
  const edges: Array<[number, number]> = [];
  for (const f of list) {
    const end = f.end === undefined ? Infinity : f.abandoned ? Math.max(f.start, f.end - ABANDON_NOTICE_MS) : f.end;
    edges.push([f.start, 1], [end, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]); // an end before a start at the same moment
  let flying = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (flying += d));
  return max;
}
