/** The configuration of issue 20: webhooks need their secret, the secret its `whsec_` form, retention a number. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { ConfigError } from '../../src/errors';

const SECRET = `whsec_${Buffer.from('key').toString('base64')}`;

describe('webhook and retention configuration', () => {
  it('defaults: no webhooks, retention 30 days', () => {
    const c = loadConfig({});
    expect(c.INKWELL_PUBLIC_URL).toBeUndefined();
    expect(c.INKWELL_RETENTION_DAYS).toBe(30);
  });

  it('takes a public URL with its secret, and a retention in days', () => {
    const c = loadConfig({
      INKWELL_PUBLIC_URL: 'https://inkwell.example.com',
      REPLICATE_WEBHOOK_SECRET: SECRET,
      INKWELL_RETENTION_DAYS: '7',
    });
    expect(c).toMatchObject({ REPLICATE_WEBHOOK_SECRET: SECRET, INKWELL_RETENTION_DAYS: 7 });
  });

  it('refuses, naming the variable: a public URL without secret, a secret not whsec_, a retention not a number', () => {
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal({ INKWELL_PUBLIC_URL: 'https://x.example' })).toContain('REPLICATE_WEBHOOK_SECRET');
    expect(refusal({ REPLICATE_WEBHOOK_SECRET: 'plain' })).toContain('REPLICATE_WEBHOOK_SECRET');
    expect(refusal({ INKWELL_RETENTION_DAYS: 'a month' })).toContain('INKWELL_RETENTION_DAYS');
    expect(refusal({ INKWELL_PUBLIC_URL: 'not a url', REPLICATE_WEBHOOK_SECRET: SECRET })).toContain(
      'INKWELL_PUBLIC_URL',
    );
  });
});
