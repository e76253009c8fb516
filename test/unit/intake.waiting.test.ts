/**
 * `waiting: STORE_DAILY_BUDGET` is shown only for blogs whose next provider call is a text one: not for a PENDING
 * blog that resumes its image or its publishing (the budget holds back text stages only). Reading the machine's
 * own rule (`admissionInput`) instead of "every PENDING blog" is what this guards.
 */
import { describe, expect, it } from 'vitest';
import type { BlogRepo, BlogRow } from '../../src/db/blog.repo';
import { createIntake } from '../../src/intake/intake';
import type { Supervisor } from '../../src/runtime/supervisor';

const rowOf = (status: string, resumes?: string): BlogRow =>
  ({
    blogId: 'b',
    instanceId: 'shop',
    status,
    seq: 3,
    version: 3,
    snapshot: { value: status, context: { blogId: 'b', instanceId: 'shop', ...(resumes ? { resumes } : {}) } },
    machineVersion: 2,
    view: {},
    createdAt: new Date(0),
    updatedAt: new Date(0),
  }) as unknown as BlogRow;

function intakeOver(row: BlogRow) {
  return createIntake({
    supervisor: {} as Supervisor,
    repo: { get: async () => row } as unknown as BlogRepo,
    settings: { maxAttempts: 3, retryBaseMs: 10, selectionTimeoutMs: 1000 },
    whyWaiting: async () => ({ reason: 'STORE_DAILY_BUDGET', message: 'over', until: '2026-12-03T00:00:00.000Z' }),
  });
}

describe('intake get: waiting for the store’s daily budget', () => {
  it.each([
    ['PENDING', undefined, true],
    ['PENDING', 'GENERATING_IDEAS', true],
    ['PENDING', 'GENERATING_CONTENT', true],
    ['PENDING', 'GENERATING_IMAGE', false],
    ['PENDING', 'PUBLISHING', false],
    ['GENERATING_CONTENT', undefined, true],
    ['GENERATING_IMAGE', undefined, false],
    ['PUBLISHING', undefined, false],
  ])('%s resuming %s: waiting shown = %s', async (status, resumes, shown) => {
    const blog = await intakeOver(rowOf(status, resumes)).get('b', 'shop');
    expect(blog.status).toBe(status);
    expect(blog.waiting !== undefined).toBe(shown);
  });
});
