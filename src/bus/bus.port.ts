/** The message bus as the runtime sees it: NATS when configured, else an in-process bus. */

/** A message as delivered to a subscriber. */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
}

/** Publishes events and rejections, and lets in-process readers (dashboard, SSE) follow subjects. */
export interface Bus {
  readonly kind: 'nats' | 'memory';
  /** `durable`: stored by a stream (JetStream publish, waits for the PubAck); `msgId` deduplicates retries. */
  publish(subject: string, payload: unknown, opts?: { durable?: boolean; msgId?: string }): Promise<void>;
  /** Follows `pattern` (NATS wildcards); returns the unsubscribe function. */
  subscribe(pattern: string, handler: (msg: BusMessage) => void): () => void;
  close(): Promise<void>;
  /** False while the connection to the server is lost (it reconnects by itself); absent when there is none. */
  reachable?(): boolean;
}

const encoder = new TextEncoder();

/** JSON bytes of a payload. */
export const encodeJson = (payload: unknown): Uint8Array => encoder.encode(JSON.stringify(payload));
