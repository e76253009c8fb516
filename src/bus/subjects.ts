/** NATS subjects of the contract, from the configured prefix. */
import type { CommandName } from '../intake/command.schema';

/** Every command, in the order the contract lists them. */
export const COMMAND_NAMES: readonly CommandName[] = ['create', 'select', 'cancel', 'retry'];

/** The subjects of one prefix. */
export function subjectsFor(prefix: string) {
  return {
    command: (name: CommandName) => `${prefix}.${name}`,
    commands: COMMAND_NAMES.map((name) => `${prefix}.${name}`),
    rejected: `${prefix}.rejected`,
    event: (instanceId: string, blogId: string) => `${prefix}.events.${instanceId}.${blogId}`,
    allEvents: `${prefix}.events.>`,
    storeEvents: (instanceId: string) => `${prefix}.events.${instanceId}.>`,
    /** The command a subject names, if it is one of ours. */
    commandOf(subject: string): CommandName | undefined {
      const name = subject.slice(prefix.length + 1) as CommandName;
      return subject.startsWith(`${prefix}.`) && COMMAND_NAMES.includes(name) ? name : undefined;
    },
  };
}

/** The subjects of one prefix. */
export type Subjects = ReturnType<typeof subjectsFor>;

/** NATS-style match: `*` is one token, `>` the rest. */
export function subjectMatches(pattern: string, subject: string): boolean {
  return subjectMatcher(pattern)(subject.split('.'));
}

/** `pattern` split once: a test of a subject already split into its tokens (the in-process bus's hot path). */
export function subjectMatcher(pattern: string): (tokens: readonly string[]) => boolean {
  const p = pattern.split('.');
  return (s) => {
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '>') return s.length > i;
      if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
    }
    return p.length === s.length;
  };
}
