/** Rows for tests of the blog repository and its fence: a new blog, and a transition of it with one event. */
import type { BlogWrite, NewBlog } from '../../src/db/blog.repo';

/** A new PENDING blog whose snapshot is `{ marker: 'created' }`; `epoch` names the tenure that creates it. */
export const newBlog = (blogId: string, instanceId: string, epoch?: number): NewBlog => ({
  blogId,
  instanceId,
  status: 'PENDING',
  snapshot: { marker: 'created' },
  machineVersion: 1,
  view: {},
  event: { seq: 1, payload: { status: 'PENDING' } },
  createdAt: new Date(),
  ...(epoch !== undefined ? { epoch } : {}),
});

/** Its move to GENERATING_IDEAS (seq 2), with `marker` in the snapshot and the event, fenced by `expectedVersion`. */
export const writeOf = (blogId: string, instanceId: string, expectedVersion: number, marker: string): BlogWrite => ({
  blogId,
  instanceId,
  expectedVersion,
  status: 'GENERATING_IDEAS',
  seq: 2,
  snapshot: { marker },
  machineVersion: 1,
  view: {},
  wakeAt: null,
  events: [{ seq: 2, payload: { status: 'GENERATING_IDEAS', marker } }],
});
