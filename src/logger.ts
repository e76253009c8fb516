/** Structured JSON logs (pino) on stdout; secrets are redacted wherever they appear in a logged object. */
import { pino, type Logger as PinoLogger } from 'pino';

/** The logger every module receives. */
export type Logger = PinoLogger;

const REDACT = [
  'apiKey',
  'token',
  'secret',
  'password',
  'authorization',
  '*.apiKey',
  '*.token',
  '*.secret',
  '*.password',
  '*.authorization',
  '*.OPENAI_API_KEY',
  '*.REPLICATE_API_TOKEN',
  '*.WIX_APP_SECRET',
  '*.INKWELL_API_TOKEN',
  'headers.authorization',
  'err.client',
  '*.connectionParameters',
  '*.connectionString',
  'req.headers.authorization',
];

/** Creates the process logger; `destination` defaults to stdout. */
export function createLogger(level: string, nodeId: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { nodeId },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
