/**
 * Durable provider references (a Replicate prediction id, a Wix draft or media id), written the moment a
 * provider returns them, so that a stage repeated after a crash looks up what exists instead of paying for or
 * publishing it again.
 */
export interface ProviderRefs {
  /** The value stored for `blogId` under `key`, if any. */
  get(blogId: string, key: string): Promise<string | undefined>;
  /** Stores (or replaces) the value; resolves once it is durable. */
  put(blogId: string, key: string, value: string): Promise<void>;
}
