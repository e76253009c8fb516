/**
 * The floor of the real-path benchmark: a bare client process that makes, for each blog, the same HTTP calls
 * Inkwell's adapters make (the article, the image prediction with `Prefer: wait`, then Wix: import, convert, draft,
 * publish, read the URL, with one token per store), against the same fakes, at the same concurrency, with nothing
 * in between: no database, no queue, no limiter. Closed loop: `--concurrency` blogs in flight until `--blogs` are
 * done. Prints one JSON line `{ floor: [latency ms per blog, in finishing order] }`.
 *
 * Env: FAKE_OPENAI, FAKE_REPLICATE, FAKE_WIX (base URLs as the runtime gets them) and the keys of FAKE_KEYS.
 */
import { parseArgs } from 'node:util';
import { FAKE_KEYS } from './fake.keys';

const { values } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '10' },
    blogs: { type: 'string', default: '30' },
    stores: { type: 'string', default: '20' },
  },
});
const concurrency = Number(values.concurrency);
const blogs = Number(values.blogs);
const stores = Number(values.stores);
const [openai, replicate, wix] = [process.env.FAKE_OPENAI, process.env.FAKE_REPLICATE, process.env.FAKE_WIX];
if (!openai || !replicate || !wix) throw new Error('FAKE_OPENAI, FAKE_REPLICATE and FAKE_WIX must be set');

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const tokens = new Map<string, Promise<string>>();
const tokenOf = (instanceId: string): Promise<string> => {
  let token = tokens.get(instanceId);
  if (!token) {
    token = post(`${wix}/oauth2/token`, {
      grant_type: 'client_credentials',
      client_id: FAKE_KEYS.wixAppId,
      client_secret: FAKE_KEYS.wixSecret,
      instance_id: instanceId,
    }).then((b) => String(b['access_token']));
    tokens.set(instanceId, token);
  }
  return token;
};

async function oneBlog(n: number): Promise<void> {
  const title = `Floor post ${n}`;
  await post(
    `${openai}/chat/completions`,
    {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Title idea: ${title}` }],
      response_format: { type: 'json_schema', json_schema: { name: 'blog_article', strict: true, schema: {} } },
    },
    { authorization: `Bearer ${FAKE_KEYS.openai}` },
  );
  const prediction = await post(
    `${replicate}/models/acme/painter/predictions`,
    { input: { prompt: title, aspect_ratio: '16:9' } },
    { authorization: `Bearer ${FAKE_KEYS.replicate}`, prefer: 'wait=5' },
  );
  const image = (prediction['output'] as string[] | null)?.[0];
  if (prediction['status'] !== 'succeeded' || !image) throw new Error(`prediction ${String(prediction['status'])}`);
  const auth = { authorization: await tokenOf(`store-${n % stores}`) };
  const file = await post(`${wix}/site-media/v1/files/import`, { url: image, mediaType: 'IMAGE' }, auth);
  const ricos = await post(`${wix}/ricos/v1/ricos-document/convert/to-ricos`, { html: `<p>${title}</p>` }, auth);
  const media = { wixMedia: { image: { id: (file['file'] as { id: string }).id } } };
  const draft = await post(
    `${wix}/blog/v3/draft-posts`,
    { draftPost: { title, memberId: 'member-1', richContent: ricos['document'], media }, publish: false },
    auth,
  );
  const draftId = (draft['draftPost'] as { id: string }).id;
  const published = await post(`${wix}/blog/v3/draft-posts/${draftId}/publish`, {}, auth);
  const res = await fetch(`${wix}/blog/v3/posts/${String(published['postId'])}?fieldsets=URL`, { headers: auth });
  if (!res.ok) throw new Error(`read post: HTTP ${res.status}`);
  await res.json();
}

const latencies: number[] = [];
let next = 0;
async function worker(): Promise<void> {
  while (next < blogs) {
    const n = next++;
    const t0 = performance.now();
    await oneBlog(n);
    latencies.push(performance.now() - t0);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
console.log(JSON.stringify({ floor: latencies }));
