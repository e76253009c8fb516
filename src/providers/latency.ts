/**
 * Simulated network latency around any providers: the demo and the benchmarks use it so that the offline
 * providers take about as long, relative to each other, as the real services do.
 */
import type { Providers } from './providers';
import { sleep } from './offline/seed';

/** Mean delay of each kind of call, in ms; each call waits ±50 % around it. */
export interface Latency {
  ideas: number;
  article: number;
  image: number;
  publish: number;
}

/** Stage times of the system Inkwell replaces (ideas 5 s, article 30 s, image 10 s, publish 7 s), divided by `scale`. */
export function legacyLatency(scale: number): Latency {
  return { ideas: 5000 / scale, article: 30000 / scale, image: 10000 / scale, publish: 7000 / scale };
}

/** Wraps `providers` so that each call first waits its jittered latency (aborted with the call). */
export function withLatency(providers: Providers, latency: Latency, random: () => number = Math.random): Providers {
  const wait = (mean: number, signal: AbortSignal) => sleep(Math.round(mean * (0.5 + random())), signal);
  const { writer, images, publisher } = providers;
  return {
    ...providers,
    writer: {
      name: writer.name,
      generateIdeas: async (call) => (await wait(latency.ideas, call.signal), writer.generateIdeas(call)),
      generateArticle: async (call) => (await wait(latency.article, call.signal), writer.generateArticle(call)),
    },
    images: {
      name: images.name,
      createHeaderImage: async (call) => (await wait(latency.image, call.signal), images.createHeaderImage(call)),
    },
    publisher: {
      name: publisher.name,
      publish: async (call) => (await wait(latency.publish, call.signal), publisher.publish(call)),
    },
  };
}
