/**
 * The AsyncAPI 3 document of Inkwell's NATS subjects (commands in, events and rejections out), from the same zod
 * schemas that validate the commands. `npm run docs` writes it to docs/asyncapi.json; a test keeps that file current.
 */
import type { z } from 'zod';
import { blogRefSchema, createSchema, selectSchema, type CommandName } from '../intake/command.schema';
import { API_VERSION, jsonSchemaOf } from './openapi';
import { blogEventSchema, rejectionSchema } from './message.schemas';

type Json = Record<string, unknown>;

const COMMANDS: Record<CommandName, { schema: z.ZodType; summary: string }> = {
  create: {
    schema: createSchema,
    summary: 'Create a blog (one of topic, idea is required); a known blogId changes nothing',
  },
  select: { schema: selectSchema, summary: 'Select one of the ideas of the AWAITING_SELECTION event' },
  cancel: { schema: blogRefSchema, summary: 'Cancel a blog' },
  retry: { schema: blogRefSchema, summary: 'Resume a FAILED blog at the stage that failed' },
};

/** Builds the document for the default subject prefix `blogs` (`INKWELL_SUBJECT_PREFIX` changes it). */
export function buildAsyncApiDocument(version: string): Json {
  const schemas: Json = {};
  const ref = (kind: string, name: string) => ({
    $ref: `#/${kind === 'channels' ? '' : 'components/'}${kind}/${name}`,
  });
  const channels: Json = {};
  const operations: Json = {};
  const messages: Json = {};
  const payloadOf = (schema: z.ZodType) => jsonSchemaOf(schema, schemas, '#/components/schemas/');

  for (const [name, { schema, summary }] of Object.entries(COMMANDS)) {
    messages[name] = { name, summary, contentType: 'application/json', payload: payloadOf(schema) };
    channels[name] = {
      address: `blogs.${name}`,
      description: 'Captured by the JetStream stream INKWELL_COMMANDS; publish with JetStream and a Nats-Msg-Id header',
      messages: { [name]: ref('messages', name) },
    };
    operations[name] = { action: 'receive', summary, channel: ref('channels', name) };
  }
  messages.rejected = { name: 'rejected', contentType: 'application/json', payload: payloadOf(rejectionSchema) };
  channels.rejected = {
    address: 'blogs.rejected',
    description: 'A command that could not be applied; it is acknowledged, not retried',
    messages: { rejected: ref('messages', 'rejected') },
  };
  operations.rejected = { action: 'send', channel: ref('channels', 'rejected') };
  messages.event = { name: 'event', contentType: 'application/json', payload: payloadOf(blogEventSchema) };
  channels.events = {
    address: 'blogs.events.{instanceId}.{blogId}',
    description:
      'Every status change, at least once and in seq order per blog; kept in the JetStream stream INKWELL_EVENTS',
    parameters: { instanceId: { description: 'The store' }, blogId: { description: 'The blog' } },
    messages: { event: ref('messages', 'event') },
  };
  operations.events = { action: 'send', channel: ref('channels', 'events') };

  return {
    asyncapi: '3.0.0',
    info: { title: 'Inkwell', version, description: 'The NATS subjects of Inkwell, with the default prefix `blogs`.' },
    defaultContentType: 'application/json',
    servers: { nats: { host: 'localhost:4222', protocol: 'nats', description: 'NATS_URL' } },
    channels,
    operations,
    components: { schemas, messages },
  };
}

/** The text of docs/asyncapi.json. */
export const asyncApiText = (): string => `${JSON.stringify(buildAsyncApiDocument(API_VERSION), null, 2)}\n`;
