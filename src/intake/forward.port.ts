/** The port to a store's owner in another process (implemented over NATS request-reply by bus/forwarder.ts). */
import type { CommandName } from './command.schema';
import type { ApplyOptions, CommandResult } from './intake';

/** Forwards commands to the process holding their store, and answers those forwarded here. */
export interface Forwarder {
  /** Answers commands forwarded to this node with `apply`; returns the function that stops answering. */
  serve(apply: (name: CommandName, body: unknown, opts: ApplyOptions) => Promise<CommandResult>): () => void;
  /** Applies a command at `owner`; a `CommandError` there is thrown here, anything else is retryable. */
  forward(owner: string, name: CommandName, body: unknown, opts: ApplyOptions): Promise<CommandResult>;
}
