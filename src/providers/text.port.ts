import type { Article, BlogRequest, Usage, Idea } from '../../machines/blog.types';

/** What a text writer is asked to do; `signal` aborts the call when the blog is cancelled or the process drains. */
export interface TextCall {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  attempt: number;
  signal: AbortSignal;
  /** Reports what a provider answer cost, as the provider counted it; called once per paid answer. */
  onUsage?: (usage: Partial<Usage>) => void;
}

/** Writes post ideas and articles (OpenAI, or the offline writer). Failures throw `StageFailureError`. */
export interface TextWriter {
  readonly name: string;
  /** Several distinct ideas for `request.topic`, each with a title and a summary. */
  generateIdeas(call: TextCall): Promise<Idea[]>;
  /** The article for `idea`; `html` must already be sanitized. */
  generateArticle(call: TextCall & { idea: Idea }): Promise<Article>;
}
