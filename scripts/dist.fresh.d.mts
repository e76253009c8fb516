/** Types of dist.fresh.mjs (plain JavaScript, so that it runs before anything is compiled). */
export function staleReason(root?: string): string | undefined;
export function ensureDist(opts?: { root?: string; log?: (line: string) => void }): 'fresh' | 'built';
