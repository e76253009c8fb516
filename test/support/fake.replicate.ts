/**
 * A local fake of Replicate's predictions API (127.0.0.1, random port; `url` includes `/v1`), close enough for the
 * real `replicate` SDK: `POST /v1/models/:owner/:name/predictions`, `POST /v1/predictions` (with `version`),
 * `GET /v1/predictions/:id`, `POST /v1/predictions/:id/cancel`. A prediction starts as `starting`, is `processing`
 * while polled, and ends as planned (`succeeded` with an image URL by default) after `polls` GETs. Any reply can be
 * scripted per test, and every request is recorded with its timestamps.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { startRecordingServer, type HttpReply, type RecordedRequest } from './fake.openai';

/** How the predictions created from now on end. */
export interface PredictionPlan {
  /** GETs before the prediction reaches `status`; 0 ends it in the create response. */
  polls: number;
  status: 'succeeded' | 'failed' | 'canceled' | 'aborted';
  error?: string;
  /** Output on success; default `[<url>]`. */
  output?: unknown;
}

/** A prediction as the fake keeps it (mutable, so a test can age it). */
export interface FakePrediction {
  id: string;
  model: string;
  version: string;
  input: unknown;
  status: string;
  output: unknown;
  error: string | null;
  logs: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  urls: { get: string; cancel: string };
  polls: number;
  plan: PredictionPlan;
}

/** The fake Replicate server. */
export interface FakeReplicate {
  url: string;
  requests: RecordedRequest[];
  predictions: Map<string, FakePrediction>;
  /** Recorded prediction creates (either POST route). */
  creates(): RecordedRequest[];
  /** Recorded `GET /v1/predictions/:id`. */
  polls(): RecordedRequest[];
  maxInFlight(): number;
  /** Webhooks sent so far (with `webhookSecret`). */
  webhooks: SentWebhook[];
  /** Changes how later predictions end. */
  plan(plan: Partial<PredictionPlan>): void;
  /** Sends later webhooks to `fn(url)` instead of the URL the create named (as a load balancer may route them). */
  routeWebhooks(fn: (url: string) => string): void;
  /** `fn(request)` answers any request; `undefined` keeps the normal answer. */
  script(fn: (req: RecordedRequest) => HttpReply | undefined): void;
  /**
   * Answers the next *create* requests with these replies, in order, then normally again. Only creates take
   * them, so a late poll left over from an earlier test cannot swallow a reply meant for this one.
   */
  enqueue(...replies: HttpReply[]): void;
  close(): Promise<void>;
}

type StatusReply = HttpReply & { status: number };

const problem = (status: number, title: string, detail: string, headers?: Record<string, string>): StatusReply => ({
  status,
  body: { title, detail, status },
  ...(headers ? { headers } : {}),
});

/** Ready-made faults, as Replicate sends them. */
export const replicateReplies = {
  rateLimited: (retryAfterSeconds = 3): StatusReply =>
    problem(429, 'Too Many Requests', 'Request was throttled.', { 'retry-after': String(retryAfterSeconds) }),
  status: (status: number, detail = `status ${status}`): StatusReply => problem(status, `Error ${status}`, detail),
  slow: (reply: StatusReply, delayMs: number): HttpReply => ({ ...reply, delayMs }),
  hang: (): HttpReply => ({ hang: true }),
  drop: (): HttpReply => ({ drop: true }),
};

/** Options of the fake; with `token`, any other bearer token gets a 401. */
export interface FakeReplicateOptions {
  token?: string;
  /**
   * A prediction runs this long, in time rather than in polls: a create with `Prefer: wait=<n>` is answered when it
   * ends (or after n seconds, still processing), a poll sees it finished once the time has passed. Default: polls.
   */
  runMs?: number | ((req: RecordedRequest) => number);
  /**
   * Replicate's webhook signing secret (`whsec_<base64>`): a create that names a `webhook` gets the finished
   * prediction POSTed there when it ends (with `runMs`), signed the Standard Webhooks way.
   */
  webhookSecret?: string;
}

/** A webhook the fake sent: where to (after `routeWebhooks`), exactly the headers and body, and when. */
export interface SentWebhook {
  url: string;
  headers: Record<string, string>;
  body: string;
  sentAt: number;
  status?: number;
}

/** Standard Webhooks headers for `body` under `secret`, at `timestamp` (Unix seconds). */
export function signWebhook(secret: string, body: string, id = `msg_${randomUUID()}`, timestamp = Date.now() / 1000) {
  const ts = String(Math.floor(timestamp));
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': `v1,${signature}` };
}

/** POSTs a webhook delivery (`headers`, e.g. from `signWebhook`, and `body`) to the Inkwell process at `base`. */
export function postWebhook(base: string, headers: Record<string, string>, body: string): Promise<Response> {
  return fetch(`${base}/hooks/replicate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

/** Starts the fake. */
export async function startFakeReplicate(opts: FakeReplicateOptions = {}): Promise<FakeReplicate> {
  const predictions = new Map<string, FakePrediction>();
  let plan: PredictionPlan = { polls: 2, status: 'succeeded' };
  let script: (req: RecordedRequest) => HttpReply | undefined = () => undefined;
  const queue: HttpReply[] = [];
  let base = '';

  const runMsOf = opts.runMs;
  const doneAt = new Map<string, number>();
  const advance = (p: FakePrediction) => {
    const due = doneAt.get(p.id);
    if (due !== undefined ? Date.now() < due : p.polls < p.plan.polls) {
      if (p.polls > 0) [p.status, p.started_at] = ['processing', p.started_at ?? new Date().toISOString()];
      return;
    }
    if (p.completed_at) return;
    p.status = p.plan.status;
    p.completed_at = new Date().toISOString();
    if (p.plan.status === 'succeeded')
      p.output = p.plan.output ?? [`https://replicate.delivery/fake/${p.id}/out-0.webp`];
    else p.error = p.plan.error ?? (p.plan.status === 'failed' ? 'CUDA out of memory' : null);
  };
  const webhooks: SentWebhook[] = [];
  let routeWebhook = (url: string) => url;
  const timers = new Set<NodeJS.Timeout>();
  /** Sends the finished prediction to its webhook once `ms` have passed. */
  const notifyLater = (p: FakePrediction, url: string, ms: number) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      // The prediction ends now: a timer counts from the event loop's cached time, so it may fire a few ms before
      // doneAt by Date.now(), and the "completed" webhook then carried a prediction still processing.
      doneAt.set(p.id, Math.min(doneAt.get(p.id) ?? Infinity, Date.now()));
      advance(p);
      const body = JSON.stringify(view(p));
      const headers = { 'content-type': 'application/json', ...signWebhook(opts.webhookSecret!, body) };
      const sent: SentWebhook = { url: routeWebhook(url), headers, body, sentAt: Date.now() };
      webhooks.push(sent);
      fetch(sent.url, { method: 'POST', headers, body }).then(
        (res) => void (sent.status = res.status),
        () => void (sent.status = 0),
      );
    }, ms);
    timers.add(timer);
  };
  const view = ({ polls: _polls, plan: _plan, ...p }: FakePrediction) => ({ ...p, source: 'api', data_removed: false });

  const create = (req: RecordedRequest, model: string, version: string): HttpReply => {
    const body = (req.body ?? {}) as { input?: unknown; version?: string; webhook?: string };
    if (typeof body.input !== 'object' || body.input === null)
      return problem(422, 'Invalid input', 'input is required');
    const id = `p${Math.random().toString(36).slice(2, 14)}`;
    const prediction: FakePrediction = {
      id,
      model,
      version,
      input: body.input,
      status: 'starting',
      output: null,
      error: null,
      logs: '',
      created_at: new Date().toISOString(),
      started_at: null,
      completed_at: null,
      urls: { get: `${base}/v1/predictions/${id}`, cancel: `${base}/v1/predictions/${id}/cancel` },
      polls: 0,
      plan: { ...plan },
    };
    predictions.set(id, prediction);
    const runMs = typeof runMsOf === 'function' ? runMsOf(req) : runMsOf;
    if (runMs === undefined) {
      advance(prediction);
      return { status: 201, body: view(prediction) };
    }
    // Runs for runMs; `Prefer: wait=<n>` holds the answer until it ends or n seconds passed.
    const waitMs = 1000 * Number(/wait=(\d+)/.exec(String(req.headers.prefer ?? ''))?.[1] ?? 0);
    doneAt.set(id, Date.now() + (waitMs >= runMs ? 0 : runMs));
    advance(prediction);
    if (opts.webhookSecret && typeof body.webhook === 'string') notifyLater(prediction, body.webhook, runMs);
    if (!prediction.completed_at) prediction.status = waitMs > 0 ? 'processing' : 'starting';
    return { status: 201, body: view(prediction), delayMs: Math.min(waitMs, runMs) };
  };

  const route = (req: RecordedRequest): HttpReply => {
    const path = req.path.split('?')[0] ?? '';
    const onModel = /^\/v1\/models\/([^/]+)\/([^/]+)\/predictions$/.exec(path);
    if (req.method === 'POST' && onModel) {
      return create(req, `${onModel[1]}/${onModel[2]}`, 'hidden');
    }
    if (req.method === 'POST' && path === '/v1/predictions') {
      const version = (req.body as { version?: unknown } | undefined)?.version;
      if (typeof version !== 'string') return problem(422, 'Invalid version', 'version is required');
      return create(req, 'owner/model', version);
    }
    const m = /^\/v1\/predictions\/([^/]+)(\/cancel)?$/.exec(path);
    const prediction = m ? predictions.get(m[1] ?? '') : undefined;
    if (!prediction) return problem(404, 'Not found', 'The requested resource could not be found.');
    if (req.method === 'GET' && !m?.[2]) {
      prediction.polls++;
      advance(prediction);
    } else if (req.method === 'POST' && m?.[2] && !prediction.completed_at) {
      [prediction.status, prediction.completed_at] = ['canceled', new Date().toISOString()];
    } else return problem(405, 'Method not allowed', req.method);
    return { status: 200, body: view(prediction) };
  };

  const isCreate = (r: RecordedRequest) => r.method === 'POST' && /\/predictions$/.test(r.path);
  const server = await startRecordingServer((req) => {
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      return problem(401, 'Unauthenticated', 'You did not pass a valid authentication token');
    }
    return (isCreate(req) ? queue.shift() : undefined) ?? script(req) ?? route(req);
  });
  base = server.url;
  return {
    url: `${server.url}/v1`,
    requests: server.requests,
    predictions,
    creates: () => server.requests.filter(isCreate),
    polls: () => server.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/v1/predictions/')),
    maxInFlight: server.maxInFlight,
    plan: (next) => void (plan = { ...plan, ...next }),
    routeWebhooks: (fn) => void (routeWebhook = fn),
    script: (fn) => void (script = fn),
    enqueue: (...replies) => void queue.push(...replies),
    webhooks,
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      return server.close();
    },
  };
}
