'use strict';
// Preloaded by `npm start` (`node --require`), before tsx and the sources load, which takes up to a second: without
// a listener, a SIGTERM or SIGINT then would end Node at once, killed by the signal. This only records them;
// watchStopSignals (shutdown.ts) takes them over, with the time each came, when the runtime begins watching.
const seen = [];
const record = (signal) => seen.push({ signal, at: Date.now() });
process.on('SIGTERM', record);
process.on('SIGINT', record);
globalThis[Symbol.for('inkwell.earlySignals')] = () => {
  process.off('SIGTERM', record);
  process.off('SIGINT', record);
  return seen.splice(0);
};
