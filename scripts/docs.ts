/** Writes docs/asyncapi.json from the zod schemas (`npm run docs`); the AsyncAPI test fails while it is stale. */
import { writeFileSync } from 'node:fs';
import { asyncApiText } from '../src/api/asyncapi';

const file = new URL('../docs/asyncapi.json', import.meta.url);
writeFileSync(file, asyncApiText());
console.log(`wrote ${file.pathname}`);
