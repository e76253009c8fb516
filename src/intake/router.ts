/**
 * Routes each command to the process that holds its store: applied here when this process holds (or can take)
 * the store's lease, else forwarded to the owner. Reads need no routing: they come from the database.
 *
 * An owner that does not answer (killed, or without NATS no way to reach it) is not an error at once: its lease
 * runs out within the lease TTL, or it gives an idle store back sooner, and then this process takes the store and
 * applies the command. The router keeps trying, every `retryMs`, for up to `waitMs`; only then does it answer
 * with a retryable error.
 */
import { InkwellError } from '../errors';
import type { LeaseManager } from '../runtime/leases';
import { idSchema, type CommandName } from './command.schema';
import type { ApplyOptions, CommandResult, Intake } from './intake';
import type { Forwarder } from './forward.port';

export interface RouterOptions {
  /** How long to keep trying to reach or replace a store's owner (the lease TTL plus a margin). */
  waitMs: number;
  /** Pause between tries. */
  retryMs?: number;
}

function instanceIdOf(body: unknown): string | undefined {
  const id = body && typeof body === 'object' ? (body as { instanceId?: unknown }).instanceId : undefined;
  return idSchema.safeParse(id).success ? (id as string) : undefined;
}

const unreachable = (e: unknown) =>
  e instanceof InkwellError && (e.code === 'OWNER_UNREACHABLE' || e.code === 'OWNER_ELSEWHERE');

/** Wraps `intake` so that `apply` runs at the store's owner; `get` and `list` are unchanged. */
export function createRouter(
  intake: Intake,
  leases: LeaseManager,
  forwarder: Forwarder | undefined,
  options: RouterOptions,
): Intake {
  const retryMs = options.retryMs ?? 250;

  async function once(instanceId: string, name: CommandName, body: unknown, opts: ApplyOptions) {
    const route = await leases.ensure(instanceId);
    if (route.mine) return leases.pin(instanceId, () => intake.apply(name, body, opts));
    if (opts.forwarded || !forwarder) {
      throw new InkwellError('OWNER_ELSEWHERE', `store ${instanceId} is held by ${route.owner}; try again`, true);
    }
    return forwarder.forward(route.owner, name, body, opts);
  }

  async function apply(name: CommandName, body: unknown, opts: ApplyOptions = {}): Promise<CommandResult> {
    const instanceId = instanceIdOf(body);
    // Without a valid store id the intake rejects it as INVALID_PAYLOAD; no owner is needed for that.
    if (!instanceId) return intake.apply(name, body, opts);
    // A forwarded command is answered at once: the sender does the waiting.
    const deadline = opts.forwarded ? 0 : Date.now() + options.waitMs;
    for (;;) {
      try {
        return await once(instanceId, name, body, opts);
      } catch (e) {
        if (!unreachable(e) || leases.stopping() || Date.now() + retryMs > deadline) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
  return { ...intake, apply };
}
