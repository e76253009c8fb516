/** Statuses of a blog, exactly as the public contract names them. */
export const BLOG_STATUSES = [
  'PENDING',
  'GENERATING_IDEAS',
  'AWAITING_SELECTION',
  'GENERATING_CONTENT',
  'GENERATING_IMAGE',
  'PUBLISHING',
  'DONE',
  'FAILED',
  'CANCELLED',
] as const;

/** One status of the contract; the top-level state of the blog machine. */
export type BlogStatus = (typeof BLOG_STATUSES)[number];

/**
 * The groups of statuses, defined here only and used everywhere (runtime, repositories, demo, dashboard, tests):
 * - working: the blog holds one of its store's working slots; its stage runs or backs off;
 * - waiting: it waits, holding no slot, for a slot of its store (and its daily budget: PENDING) or for its owner's
 *   pick (AWAITING_SELECTION);
 * - final: it never changes again. FAILED is none of these: final until a `retry` command.
 */
const WORKING = ['GENERATING_IDEAS', 'GENERATING_CONTENT', 'GENERATING_IMAGE', 'PUBLISHING'] as const;
/** A working status: a stage that holds a working slot of the store. */
export type WorkingStage = (typeof WORKING)[number];
/** Statuses in which a blog holds one of its store's working slots. */
export const WORKING_STATUSES: readonly BlogStatus[] = WORKING;
/** Statuses in which a blog waits without a slot: for one (PENDING) or for its owner's pick. */
export const WAITING_STATUSES: readonly BlogStatus[] = ['PENDING', 'AWAITING_SELECTION'];
/** Statuses that never change again. */
export const FINAL_STATUSES: readonly BlogStatus[] = ['DONE', 'CANCELLED'];
/** Statuses where a blog's run has ended: final, or FAILED (until a retry). */
export const ENDED_STATUSES: readonly BlogStatus[] = [...FINAL_STATUSES, 'FAILED'];
/**
 * Statuses where nothing happens until a command (or a selection's timer): every status but the working ones and
 * PENDING (which waits for a slot in memory). Their actors may leave memory.
 */
export const IDLE_STATUSES: readonly BlogStatus[] = BLOG_STATUSES.filter(
  (s) => !WORKING_STATUSES.includes(s) && s !== 'PENDING',
);

/** Whether `status` holds a working slot. */
export const isWorking = (status: string): status is WorkingStage => WORKING_STATUSES.includes(status as BlogStatus);

/** Stages that can fail, in order; `AWAITING_SELECTION` fails only by timing out. */
export const STAGES = [
  'GENERATING_IDEAS',
  'AWAITING_SELECTION',
  'GENERATING_CONTENT',
  'GENERATING_IMAGE',
  'PUBLISHING',
] as const satisfies readonly BlogStatus[];
/** A stage that can fail. */
export type Stage = (typeof STAGES)[number];

/** A post idea: proposed by the ideas stage or given at creation. */
export interface Idea {
  title: string;
  summary: string;
}

/** What the store owner asked for. */
export interface BlogRequest {
  topic?: string;
  idea?: Idea;
  keywords: string[];
  language?: string;
  tone?: string;
  authorMemberId?: string;
  /** The W3C trace context of the `create`, so every stage attempt, in any process, continues its trace. */
  traceparent?: string;
}

/** The written article; `html` is already sanitized. */
export interface Article {
  title: string;
  excerpt: string;
  markdown: string;
  html: string;
}

/** The header image, by reference (never the bytes). */
export interface HeaderImage {
  url: string;
  alt: string;
}

/** The post as published on the store. */
export interface PublishedPost {
  id: string;
  url?: string;
}

/** What a blog (or one attempt of a stage) spent: tokens as the text provider reported them, images created. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  images: number;
}

/** Nothing spent. */
export const NO_USAGE: Usage = Object.freeze({ inputTokens: 0, outputTokens: 0, images: 0 });

/** `a + b`, field by field; `b` may be absent or partial (non-numbers count as 0). */
export function addUsage(a: Usage | undefined, b: Partial<Usage> | undefined): Usage {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);
  return {
    inputTokens: n(a?.inputTokens) + n(b?.inputTokens),
    outputTokens: n(a?.outputTokens) + n(b?.outputTokens),
    images: n(a?.images) + n(b?.images),
  };
}

/**
 * A stage failure: what one attempt of a stage ended with instead of a result, under this one name from the adapter
 * to the event. Adapters throw it as `StageFailureError` (src/errors.ts); the stage actor stamps it (`at`, `usage`)
 * and rejects with it; the machine backs off on it (context `lastError`) and, once it gives up, keeps its code and
 * message in the blog's `BlogFailure` (context and event `error`). Plain JSON, never an `Error`.
 */
export interface StageFailure {
  code: string;
  message: string;
  retryable: boolean;
  /** When it happened (ms since epoch): the base of the backoff deadline. */
  at: number;
  /** A provider's `Retry-After`, when it gave one. */
  retryAfterMs?: number;
  /** What the failed attempt spent all the same (tokens of an answer that could not be used, say). */
  usage?: Usage;
}

/**
 * Why a blog is `FAILED`, as the contract shows it (the event's `error`): the code and message of the `StageFailure`
 * that ended it, the stage it happened in and the attempts spent.
 */
export type BlogFailure = Pick<StageFailure, 'code' | 'message'> & { stage: Stage; attempts: number };

/** Output of every stage actor: its result and when it was produced. */
export interface StageOutput<T> {
  result: T;
  at: number;
  /** What the attempt spent, when it spent anything. */
  usage?: Usage;
}

/** Knobs the runtime passes in at creation; stored with the blog. */
export interface BlogSettings {
  maxAttempts: number;
  retryBaseMs: number;
  selectionTimeoutMs: number;
}
