import type { Article, BlogRequest, HeaderImage, Usage } from '../../machines/blog.types';

/** What an image maker is asked to do. */
export interface ImageCall {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  article: Article;
  attempt: number;
  signal: AbortSignal;
  /** Reports what a provider answer cost, as the provider counted it; called once per paid answer. */
  onUsage?: (usage: Partial<Usage>) => void;
}

/** Makes the header image (Replicate, or the local renderer). Must be safe to call again for the same blog. */
export interface ImageMaker {
  readonly name: string;
  createHeaderImage(call: ImageCall): Promise<HeaderImage>;
}
