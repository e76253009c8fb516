/**
 * The two streams of the contract, created at start if missing: commands (so commands published while no
 * Inkwell runs are kept) and events (for replay). Limits retention, so one durable consumer can be shared.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Subjects } from './subjects';

/** Names of the streams and the shared consumer. */
export interface StreamNames {
  commands: string;
  events: string;
  consumer: string;
}

/** Seconds JetStream remembers a `Nats-Msg-Id` (its default). */
const DUPLICATE_WINDOW_MS = 120_000;

async function ensureStream(jsm: JetStreamManager, name: string, subjects: string[], maxAgeMs: number) {
  try {
    const info = await jsm.streams.info(name);
    const missing = subjects.filter((s) => !info.config.subjects?.includes(s));
    // A stream shared with another prefix keeps its subjects and gains ours.
    if (missing.length > 0) {
      await jsm.streams.update(name, { ...info.config, subjects: [...(info.config.subjects ?? []), ...missing] });
    }
  } catch (err) {
    if (!String((err as Error).message).includes('not found')) throw err;
    await jsm.streams.add({
      name,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      max_age: nanos(maxAgeMs),
    });
  }
}

/**
 * Creates (or completes) both streams and the durable command consumer; idempotent, safe from many processes. The
 * consumer's `ack_wait` is `ackWaitMs` (see `ownershipTimings`); an existing consumer with another one is updated.
 */
export async function ensureStreams(
  nc: NatsConnection,
  names: StreamNames,
  subjects: Subjects,
  ackWaitMs = 30_000,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const week = 7 * 24 * 3600 * 1000;
  await ensureStream(jsm, names.commands, subjects.commands, week);
  await ensureStream(jsm, names.events, [subjects.allEvents], week);
  let existing;
  try {
    existing = await jsm.consumers.info(names.commands, names.consumer);
  } catch {
    existing = undefined;
  }
  if (existing) {
    if (existing.config.ack_wait !== nanos(ackWaitMs)) {
      await jsm.consumers.update(names.commands, names.consumer, { ack_wait: nanos(ackWaitMs) });
    }
  } else {
    await jsm.consumers.add(names.commands, {
      durable_name: names.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      max_deliver: -1,
      // One prefix's commands only: `<prefix>.*` matches exactly the four command subjects in this stream.
      filter_subject: subjects.commands[0]!.replace(/\.[^.]+$/, '.*'),
    });
  }
}
