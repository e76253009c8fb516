/**
 * Vitest global setup (both configs): builds dist/ once, before any test file runs, when it is missing or older than
 * the sources. Tests spawn `npm start` (which runs the compiled build), sometimes several at once; each start's
 * prestart then finds dist/ fresh and never builds concurrently with another.
 */
import { ensureDist } from '../../scripts/dist.fresh.mjs';

export default function setup(): void {
  ensureDist({ log: (line) => console.log(line) });
}
