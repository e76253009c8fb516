/**
 * The daily token budget of each store (`INKWELL_STORE_DAILY_TOKENS`): a store that has spent it starts no new
 * OpenAI call until the next UTC day. Its blogs wait (in `PENDING` before their first stage, or before the call in
 * their stage), nothing fails, and other stores and the store's non-text work go on. Calls already running when the
 * budget is reached finish, so a store may end a day over its budget by what those calls cost.
 */
import type { UsageLedger } from './usage.ledger';

/** Why a blog waits, as `GET /api/blogs/:blogId` shows it. */
export interface WaitReason {
  reason: 'STORE_DAILY_BUDGET';
  message: string;
  /** When the store may spend again (the next UTC midnight). */
  until: string;
}

const DAY_MS = 86_400_000;
/** How often a waiting blog looks again (the day's spend is re-read at most every 5 s). */
const RECHECK_MS = 30_000;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => (signal?.removeEventListener('abort', abort), resolve()), ms);
    function abort() {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    }
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
  });

/** Creates the budget over the ledger; without `dailyTokens` nothing ever waits. */
export function createStoreBudget(opts: {
  dailyTokens?: number | undefined;
  ledger: Pick<UsageLedger, 'tokensToday'>;
  now?: () => number;
  recheckMs?: number;
}) {
  const now = opts.now ?? Date.now;
  const nextDay = () => Math.floor(now() / DAY_MS) * DAY_MS + DAY_MS;

  async function blocked(instanceId: string): Promise<WaitReason | undefined> {
    const budget = opts.dailyTokens;
    if (budget === undefined) return undefined;
    const spent = await opts.ledger.tokensToday(instanceId);
    if (spent < budget) return undefined;
    return {
      reason: 'STORE_DAILY_BUDGET',
      message: `store ${instanceId} has spent ${spent} of its ${budget} OpenAI tokens today (UTC); it goes on at the next UTC day`,
      until: new Date(nextDay()).toISOString(),
    };
  }

  return {
    blocked,
    /** Resolves once `instanceId` may start an OpenAI call; rejects only when `signal` aborts. */
    async wait(instanceId: string, signal?: AbortSignal): Promise<void> {
      if (opts.dailyTokens === undefined) return;
      for (;;) {
        let reason: WaitReason | undefined;
        try {
          reason = await blocked(instanceId);
        } catch {
          reason = undefined; // the database is away: its outage handling is elsewhere; spend is checked again later
        }
        if (!reason) return;
        await sleep(Math.max(1, Math.min(opts.recheckMs ?? RECHECK_MS, nextDay() - now())), signal);
      }
    },
  };
}

/** The budget's interface. */
export type StoreBudget = ReturnType<typeof createStoreBudget>;
