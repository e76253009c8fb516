/** docs/asyncapi.json: current with the zod schemas, and a valid AsyncAPI 3 document (checked by @asyncapi/parser). */
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { asyncApiText } from '../../src/api/asyncapi';
import { COMMAND_NAMES } from '../../src/bus/subjects';

const FILE = new URL('../../docs/asyncapi.json', import.meta.url);

describe('AsyncAPI document of the NATS subjects', () => {
  it('is the one the schemas generate (run `npm run docs` after changing them)', () => {
    expect(readFileSync(FILE, 'utf8')).toBe(asyncApiText());
  });

  it('passes the AsyncAPI parser without an error', async () => {
    const diagnostics = await new Parser().validate(readFileSync(FILE, 'utf8'));
    expect(
      diagnostics
        .filter((d) => Number(d.severity) === 0 /* DiagnosticSeverity.Error */)
        .map((d) => `${d.path.join('.')}: ${d.message}`),
    ).toEqual([]);
  });

  it('lists every command subject, the rejections and the events', () => {
    const document = JSON.parse(readFileSync(FILE, 'utf8')) as { channels: Record<string, { address: string }> };
    const addresses = Object.values(document.channels).map((c) => c.address);
    expect(addresses.sort()).toEqual(
      [...COMMAND_NAMES.map((n) => `blogs.${n}`), 'blogs.rejected', 'blogs.events.{instanceId}.{blogId}'].sort(),
    );
  });
});
