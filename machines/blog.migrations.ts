/**
 * Pure migrations of persisted blog snapshots between machine versions. Add one function per version bump,
 * keyed by the version it upgrades *from*; each takes a snapshot of that version and returns one of the next.
 */

/** A persisted snapshot as stored: JSON. */
export type PersistedSnapshot = Record<string, unknown>;

/** Upgrades from version `n` to `n + 1`, keyed by `n`. Empty while the machine is at version 1. */
export const SNAPSHOT_MIGRATIONS: Record<number, (snapshot: PersistedSnapshot) => PersistedSnapshot> = {};

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
