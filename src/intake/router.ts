/**
 * Routes each command to the process that holds its store: applied here when this process holds (or can take)
 * the store's lease, else forwarded to the owner. Reads need no routing: they come from the database.
 */
import { InkwellError } from '../errors';
import type { Forwarder } from '../bus/forwarder';
import type { LeaseManager } from '../runtime/leases';
import { idSchema, type CommandName } from './command.schema';
import type { ApplyOptions, CommandResult, Intake } from './intake';

function instanceIdOf(body: unknown): string | undefined {
  const id = body && typeof body === 'object' ? (body as { instanceId?: unknown }).instanceId : undefined;
  return idSchema.safeParse(id).success ? (id as string) : undefined;
}

/** Wraps `intake` so that `apply` runs at the store's owner; `get` and `list` are unchanged. */
export function createRouter(intake: Intake, leases: LeaseManager, forwarder?: Forwarder): Intake {
  async function apply(name: CommandName, body: unknown, opts: ApplyOptions = {}): Promise<CommandResult> {
    const instanceId = instanceIdOf(body);
    // Without a valid store id the intake rejects it as INVALID_PAYLOAD; no owner is needed for that.
    if (!instanceId) return intake.apply(name, body, opts);
    const route = await leases.ensure(instanceId);
    if (route.mine) return leases.pin(instanceId, () => intake.apply(name, body, opts));
    if (opts.forwarded || !forwarder) {
      throw new InkwellError('OWNER_ELSEWHERE', `store ${instanceId} is held by ${route.owner}; try again`, true);
    }
    return forwarder.forward(route.owner, name, body, opts);
  }
  return { ...intake, apply };
}
