/**
 * What the blog machine remembers and receives: its context, its input and events, what its stage actors get, and
 * the pure helpers that read the context for them. See the glossary at the top of `blog.machine.ts`.
 */
import type {
  Article,
  BlogFailure,
  BlogRequest,
  BlogSettings,
  HeaderImage,
  Idea,
  PublishedPost,
  StageFailure,
  Usage,
  WorkingStage,
} from './blog.types';

/** Everything the blog remembers; JSON-safe, persisted with every transition. */
export interface BlogContext {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  settings: BlogSettings;
  ideas?: Idea[];
  idea?: Idea;
  article?: Article;
  image?: HeaderImage;
  post?: PublishedPost;
  error?: BlogFailure;
  /** Failed attempts of the current stage. */
  attempts: number;
  /** The last failure of the current stage, kept while it backs off (persisted under this name). */
  lastError?: StageFailure;
  /** End of the current backoff wait. */
  retryAt?: number;
  /** When AWAITING_SELECTION gives up. */
  selectionDeadline?: number;
  /** What the blog has spent so far, retries and repeats included; absent in snapshots from before it was kept. */
  usage?: Usage;
  /** The stage PENDING's admission leads to after a SELECT or a RETRY; absent at creation (ideas or content). */
  resumes?: WorkingStage;
}

/** What the runtime passes to create a blog. */
export interface BlogInput {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  settings: BlogSettings;
}

/** Events from outside; `at` is when the command was accepted. */
export type BlogEvent =
  { type: 'SELECT'; ideaIndex: number; at: number } | { type: 'CANCEL'; at: number } | { type: 'RETRY'; at: number };

/** Emitted when an event was understood but could not be applied. */
export interface BlogRejection {
  type: 'rejected';
  code: 'INVALID_SELECTION';
  message: string;
}

/** Input of every stage actor: the blog as it is now. */
export interface StageInput {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  idea?: Idea;
  article?: Article;
  image?: HeaderImage;
  attempt: number;
}

/** Input of PENDING's admission: the store whose slot it waits for, and whether its daily token budget too. */
export interface AdmissionInput {
  blogId: string;
  instanceId: string;
  text?: boolean;
}

/** The context a new blog starts with. */
export function initialContext(input: BlogInput): BlogContext {
  return {
    blogId: input.blogId,
    instanceId: input.instanceId,
    request: input.request,
    settings: input.settings,
    attempts: 0,
  };
}

/** What a stage actor gets: the blog as it is now, and which attempt this is. */
export function stageInput({ context }: { context: BlogContext }): StageInput {
  return {
    blogId: context.blogId,
    instanceId: context.instanceId,
    request: context.request,
    idea: context.idea,
    article: context.article,
    image: context.image,
    attempt: context.attempts + 1,
  };
}

/**
 * What PENDING's admission waits for: a slot of the blog's store and, when the stage it leads to calls the text
 * provider (ideas, content), the store's daily token budget too.
 */
export const admissionInput = ({ context }: { context: BlogContext }): AdmissionInput => ({
  blogId: context.blogId,
  instanceId: context.instanceId,
  text: context.resumes !== 'GENERATING_IMAGE' && context.resumes !== 'PUBLISHING',
});
