import type { Article, BlogRequest, HeaderImage, PublishedPost } from '../../machines/blog.types';

/** What a publisher is asked to do. */
export interface PublishCall {
  blogId: string;
  instanceId: string;
  request: BlogRequest;
  article: Article;
  image?: HeaderImage;
  attempt: number;
  signal: AbortSignal;
}

/**
 * Publishes a post to its store (Wix, or HTML files). At most once per blog: a repeated call for the same
 * `blogId` (after a crash or a lost response) must find the existing post and return it, never make a second.
 */
export interface Publisher {
  readonly name: string;
  publish(call: PublishCall): Promise<PublishedPost>;
}
