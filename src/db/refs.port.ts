/**
 * Durable provider references (a Replicate prediction id, a Wix draft or media id), written the moment a
 * provider returns them, so that a stage repeated after a crash looks up what exists instead of paying for or
 * publishing it again.
 */

/** Whose reference it is: the blog, its store (writes are fenced by the store's lease) and the call writing it. */
export interface RefOwner {
  blogId: string;
  instanceId: string;
  /** The stage call's signal: once it aborted (the blog's actor stopped, its store lost), the write is refused. */
  signal?: AbortSignal;
}

/** The provider references of blogs. */
export interface ProviderRefs {
  /** The value stored for `blogId` under `key`, if any. */
  get(blogId: string, key: string): Promise<string | undefined>;
  /** Stores (or replaces) the value; resolves once it is durable. */
  put(owner: RefOwner, key: string, value: string): Promise<void>;
}
