/**
 * Live inspection of blog actors, off by default. With a WebSocket URL (INKWELL_INSPECT) every actor the
 * supervisor creates or restores reports to that relay through @statelyai/inspect's WebSocket inspector; without
 * one nothing is created and nothing connects. The Sky inspector (a third-party service) is never used.
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import type { Logger } from '../logger';

/** What the supervisor attaches to actors (`inspect` is absent when inspection is off), and how to stop it. */
export interface ActorInspector {
  inspect?: (event: InspectionEvent) => void;
  stop(): void;
}

/** Creates the inspector for `url`, or a no-op when `url` is undefined. */
export function createInspector(url: string | undefined, log: Pick<Logger, 'info'>): ActorInspector {
  if (!url) return { stop: () => undefined };
  const inspector = createWebSocketInspector({ url });
  log.info({ url }, 'inspecting actors live (INKWELL_INSPECT)');
  return {
    inspect: (event) => inspector.inspect.next?.(event),
    stop: () => inspector.stop(),
  };
}
