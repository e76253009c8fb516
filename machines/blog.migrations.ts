/**
 * Pure migrations of persisted blog snapshots between machine versions. Add one function per version bump,
 * keyed by the version it upgrades *from*; each takes a snapshot of that version and returns one of the next.
 */

import { admissionInput, type BlogContext } from './blog.machine';
import type { WorkingStage } from './blog.types';

/** A persisted snapshot as stored: JSON. */
export type PersistedSnapshot = Record<string, unknown>;

/**
 * Version 1 → 2: the `admitting` sub-states are gone. A blog persisted in `<stage>.admitting` (brought back to work
 * by a SELECT or a RETRY, waiting for a slot of its store) is restored in PENDING, waiting for the same slot, with
 * `resumes` naming the stage it enters once admitted; its pending `admission` call is kept with the input PENDING
 * gives it. Every other snapshot is unchanged (a `running` or `backoff` sub-state means the same in both).
 */
export function fromVersion1(snapshot: PersistedSnapshot): PersistedSnapshot {
  const value = snapshot.value;
  if (!value || typeof value !== 'object') return snapshot;
  const [stage, sub] = Object.entries(value as Record<string, unknown>)[0] ?? [];
  if (sub !== 'admitting' || stage === undefined) return snapshot;
  const context = { ...(snapshot.context as BlogContext), resumes: stage as WorkingStage };
  const children = { ...((snapshot.children as Record<string, Record<string, unknown>> | undefined) ?? {}) };
  const admission = children.admission;
  if (admission) {
    const child = (admission.snapshot ?? {}) as Record<string, unknown>;
    children.admission = { ...admission, snapshot: { ...child, input: admissionInput({ context }) } };
  }
  return { ...snapshot, value: 'PENDING', context, children };
}

/** Upgrades from version `n` to `n + 1`, keyed by `n`. */
export const SNAPSHOT_MIGRATIONS: Record<number, (snapshot: PersistedSnapshot) => PersistedSnapshot> = {
  1: fromVersion1,
};

/** Brings `snapshot` from version `from` to `to`; throws when a step is missing or the version is newer. */
export function migrateSnapshot(
  snapshot: unknown,
  from: number,
  to: number,
  migrations: Record<number, (snapshot: PersistedSnapshot) => PersistedSnapshot> = SNAPSHOT_MIGRATIONS,
): PersistedSnapshot {
  if (!snapshot || typeof snapshot !== 'object') throw new Error('snapshot is not an object');
  if (from > to) throw new Error(`snapshot is of machine version ${from}, newer than this runtime's ${to}`);
  let current = snapshot as PersistedSnapshot;
  for (let v = from; v < to; v++) {
    const step = migrations[v];
    if (!step) throw new Error(`no migration from machine version ${v} to ${v + 1}`);
    current = step(current);
  }
  return current;
}
