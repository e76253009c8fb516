/**
 * Wix OAuth access tokens, one per store (app instance): fetched with `client_credentials`, cached until shortly
 * before they expire, and shared by concurrent callers so a burst of publishes for one store asks for one token.
 */

/** What the token endpoint gave: the token and its lifetime in seconds. */
export interface IssuedToken {
  token: string;
  expiresInSec: number;
}

export interface TokenCacheOptions {
  /** Asks Wix for a new token for `instanceId`; failures propagate to every waiting caller. */
  fetchToken(instanceId: string): Promise<IssuedToken>;
  /** Clock (ms since epoch); tests move it to expire tokens. */
  now: () => number;
  /** A token is replaced this long before it expires, so no call starts with a token about to die. */
  marginMs: number;
}

export interface TokenCache {
  /** A valid token for `instanceId`: the cached one, or a fresh one (one request for all concurrent callers). */
  get(instanceId: string): Promise<string>;
  /** Drops `token` (rejected with 401) unless a newer one has already replaced it. */
  invalidate(instanceId: string, token: string): void;
}

interface Entry {
  token: string;
  refreshAt: number;
}

export function createTokenCache(opts: TokenCacheOptions): TokenCache {
  const tokens = new Map<string, Entry>();
  const pending = new Map<string, Promise<string>>();

  const refresh = (instanceId: string): Promise<string> => {
    const inFlight = pending.get(instanceId);
    if (inFlight) return inFlight;
    const next = opts
      .fetchToken(instanceId)
      .then(({ token, expiresInSec }) => {
        const lifetimeMs = Math.max(0, expiresInSec * 1000);
        // A token shorter-lived than twice the margin is used for half its life rather than never cached.
        const margin = Math.min(opts.marginMs, lifetimeMs / 2);
        tokens.set(instanceId, { token, refreshAt: opts.now() + lifetimeMs - margin });
        return token;
      })
      .finally(() => pending.delete(instanceId));
    pending.set(instanceId, next);
    return next;
  };

  return {
    async get(instanceId) {
      const entry = tokens.get(instanceId);
      if (entry && opts.now() < entry.refreshAt) return entry.token;
      return refresh(instanceId);
    },
    invalidate(instanceId, token) {
      if (tokens.get(instanceId)?.token === token) tokens.delete(instanceId);
    },
  };
}
