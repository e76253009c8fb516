/**
 * Prometheus metrics (`GET /metrics`), one registry per runtime so several runtimes can share a process (tests).
 * Gauges read the fleet registry when scraped; counters and histograms follow the fleet's feed (the busiest ones
 * keep their increments and observations until they are scraped).
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BLOG_STATUSES, type Usage } from '../../machines/blog.types';
import type { Fleet } from '../runtime/fleet.registry';

/** What the metrics read. */
export interface MetricsDeps {
  fleet: Fleet;
  /** Unpublished outbox events, sampled on each scrape. */
  outboxBacklog?: () => Promise<number>;
  /** Blog actors held in memory now (passivated blogs are not). */
  liveActors?: () => number;
  /** Stores shown by name in `inkwell_blogs_by_store`; the rest are summed as `other`. */
  topStores?: number;
}

const SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

/** The `top` stores with the most blogs, by name, and every other store summed as `other` (bounded cardinality). */
export function boundStores(
  byStore: Record<string, Record<string, number>>,
  top: number,
): Array<[string, Record<string, number>]> {
  const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  const ranked = Object.entries(byStore).sort((a, b) => total(b[1]) - total(a[1]) || a[0].localeCompare(b[0]));
  const shown = ranked.slice(0, top);
  if (ranked.length <= top) return shown;
  const other: Record<string, number> = {};
  for (const [, counts] of ranked.slice(top)) {
    for (const [status, n] of Object.entries(counts)) other[status] = (other[status] ?? 0) + n;
  }
  return [...shown, ['other', other]];
}

/** Creates the registry and wires it to the fleet; the returned hooks are for parts not in the fleet yet. */
export function createMetrics(deps: MetricsDeps) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const { fleet } = deps;

  new Gauge({
    name: 'inkwell_blogs',
    help: 'Blogs per status',
    labelNames: ['status'],
    registers,
    collect() {
      const { byStatus } = fleet.snapshot();
      for (const status of BLOG_STATUSES) this.set({ status }, byStatus[status]);
    },
  });
  new Gauge({
    name: 'inkwell_blogs_by_store',
    help: 'Blogs per store and status (the busiest stores by name, the rest as "other")',
    labelNames: ['instance_id', 'status'],
    registers,
    collect() {
      this.reset();
      for (const [store, counts] of boundStores(fleet.snapshot().byStore, deps.topStores ?? 20)) {
        for (const [status, n] of Object.entries(counts)) if (n > 0) this.set({ instance_id: store, status }, n);
      }
    },
  });
  const transitionCounts = createTally();
  new Counter({
    name: 'inkwell_transitions_total',
    help: 'Status changes of blogs (from NEW when created)',
    labelNames: ['from', 'to'],
    registers,
    collect() {
      transitionCounts.drain(([from, to], by) => this.inc({ from, to }, by));
    },
  });
  const stageTimes = createObservations((stage, seconds) => stageSeconds.observe({ stage }, seconds));
  const stageSeconds = new Histogram({
    name: 'inkwell_stage_duration_seconds',
    help: 'Time a blog spent in a status before leaving it',
    labelNames: ['stage'],
    buckets: SECONDS_BUCKETS,
    registers,
    collect() {
      stageTimes.drain();
    },
  });
  const failures = new Counter({
    name: 'inkwell_blog_failures_total',
    help: 'Blogs that became FAILED, by stage and error code',
    labelNames: ['stage', 'code'],
    registers,
  });
  const callCounts = createTally();
  new Counter({
    name: 'inkwell_provider_calls_total',
    help: 'Provider calls by stage actor and outcome',
    labelNames: ['stage', 'outcome'],
    registers,
    collect() {
      callCounts.drain(([stage, outcome], by) => this.inc({ stage, outcome }, by));
    },
  });
  new Gauge({
    name: 'inkwell_provider_calls_in_flight',
    help: 'Provider calls running now',
    labelNames: ['stage'],
    registers,
    collect() {
      for (const [stage, n] of Object.entries(fleet.snapshot().inFlight)) this.set({ stage }, n);
    },
  });
  const errors = new Counter({
    name: 'inkwell_errors_total',
    help: 'Failed provider calls by stage, error code and whether they are retryable',
    labelNames: ['stage', 'code', 'retryable'],
    registers,
  });
  const retries = new Counter({
    name: 'inkwell_retries_total',
    help: 'Repeated provider calls by stage and the error code that caused them',
    labelNames: ['stage', 'code'],
    registers,
  });
  new Gauge({
    name: 'inkwell_limiter_queue_depth',
    help: 'Calls waiting in a provider limiter',
    labelNames: ['limiter'],
    registers,
    collect() {
      for (const [limiter, n] of Object.entries(fleet.snapshot().limiterQueues)) this.set({ limiter }, n);
    },
  });
  const limiterWait = new Histogram({
    name: 'inkwell_limiter_wait_seconds',
    help: 'Time a call waited in a provider limiter',
    labelNames: ['limiter'],
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const leases = new Gauge({
    name: 'inkwell_leases_held',
    help: 'Store leases this process holds (each covers all blogs of one store)',
    registers,
  });
  new Gauge({
    name: 'inkwell_live_actors',
    help: 'Blog actors in memory in this process (waiting and finished blogs are passivated)',
    registers,
    collect() {
      if (deps.liveActors) this.set(deps.liveActors());
    },
  });
  new Gauge({
    name: 'inkwell_outbox_lag',
    help: 'Status events committed but not yet published',
    registers,
    async collect() {
      if (deps.outboxBacklog) this.set(await deps.outboxBacklog());
    },
  });

  const published = new Histogram({
    name: 'inkwell_event_publish_seconds',
    help: 'From the commit of a status event to its acknowledgement by the bus, for events sent right after the commit',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers,
  });

  const bulk = new Counter({
    name: 'inkwell_bulk_commands_total',
    help: 'Blogs handled by bulk retry and cancel, by command and outcome (applied, skipped, failed)',
    labelNames: ['command', 'outcome'],
    registers,
  });

  const pruned = new Counter({
    name: 'inkwell_retention_pruned_total',
    help: 'What retention removed from ended blogs: blogs pruned, outbox events and provider refs deleted',
    labelNames: ['what'],
    registers,
  });
  const tokens = new Counter({
    name: 'inkwell_tokens_total',
    help: 'Text provider tokens as its answers reported them, by stage and kind (input, output), retries included',
    labelNames: ['stage', 'kind'],
    registers,
  });
  const images = new Counter({
    name: 'inkwell_images_total',
    help: 'Header images created at the image provider, repeats included',
    registers,
  });

  fleet.onTransition((t) => {
    transitionCounts.add(`${t.from ?? 'NEW'}>${t.to}`);
    if (t.from && t.durationMs !== undefined) stageTimes.add(t.from, t.durationMs / 1000);
    if (t.failure) failures.inc(t.failure);
  });
  fleet.onCall((c) => {
    if (c.phase !== 'start') callCounts.add(`${c.stage}>${c.phase}`);
    if (c.error) errors.inc({ stage: c.stage, code: c.error.code, retryable: String(c.error.retryable) });
    if (c.retryOf) retries.inc({ stage: c.stage, code: c.retryOf });
  });

  return {
    registry,
    /** For the provider limiters: a call waited `seconds` in `limiter` (queue depth goes through the fleet). */
    observeLimiterWait: (limiter: string, seconds: number) => limiterWait.observe({ limiter }, seconds),
    /** For the outbox's direct path: one event acknowledged `seconds` after its commit. */
    observeEventPublish: (seconds: number) => published.observe(seconds),
    /** For bulk commands: one blog of a bulk `command` ended with `outcome`. */
    countBulk: (command: string, outcome: string) => bulk.inc({ command, outcome }),
    /** For retention: one batch pruned `n` of `what` (blogs, events, refs). */
    countPruned: (counts: Record<string, number>) => {
      for (const [what, n] of Object.entries(counts)) pruned.inc({ what }, n);
    },
    /** For the stage actors: what one provider answer cost. */
    observeUsage(stage: string, usage: Partial<Usage>) {
      if (usage.inputTokens) tokens.inc({ stage, kind: 'input' }, usage.inputTokens);
      if (usage.outputTokens) tokens.inc({ stage, kind: 'output' }, usage.outputTokens);
      if (usage.images) images.inc(usage.images);
    },
    /** For the lease keeper: how many blog leases this process holds now. */
    setLeasesHeld: (n: number) => leases.set(n),
  };
}

/**
 * Increments of a counter kept by key (its label values joined by `>`) until the counter is read: a status change
 * then costs a Map update, not prom-client's hashing of a labels object (which showed in the throughput profile).
 */
function createTally() {
  const pending = new Map<string, number>();
  return {
    add: (key: string) => void pending.set(key, (pending.get(key) ?? 0) + 1),
    /** Hands every pending increment to `inc` and forgets it. */
    drain(inc: (labels: string[], by: number) => void) {
      for (const [key, by] of pending) inc(key.split('>'), by);
      pending.clear();
    },
  };
}

/** Observations of a histogram kept until it is read, or until there are `max` of them (memory stays bounded). */
function createObservations(flush: (label: string, value: number) => void, max = 1024) {
  const labels: string[] = [];
  const values: number[] = [];
  const drain = () => {
    for (let i = 0; i < labels.length; i++) flush(labels[i]!, values[i]!);
    labels.length = 0;
    values.length = 0;
  };
  return {
    add(label: string, value: number) {
      labels.push(label);
      values.push(value);
      if (labels.length >= max) drain();
    },
    drain,
  };
}

/** The metrics' interface. */
export type Metrics = ReturnType<typeof createMetrics>;

/** Registers `GET /metrics` (no token: the contract leaves it open for scrapers). */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
