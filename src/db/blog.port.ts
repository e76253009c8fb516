/**
 * The port to the blog rows (implemented over PostgreSQL by `blog.repo.ts`): what the supervisor, the persister and
 * the intake use, and the rows and writes they exchange with it.
 */
import { WORKING_STATUSES, type BlogStatus } from '../../machines/blog.types';
import type { blogs } from './schema';

/** A blog row as read back. */
export type BlogRow = typeof blogs.$inferSelect;

/** One status event as written to the outbox. */
export interface OutboxEvent {
  seq: number;
  payload: Record<string, unknown>;
}

/** A new blog: its first snapshot and its first event. */
export interface NewBlog {
  blogId: string;
  instanceId: string;
  status: string;
  snapshot: unknown;
  machineVersion: number;
  view: Record<string, unknown>;
  event: OutboxEvent;
  createdAt: Date;
  /** The lease epoch of the store's tenure that creates it (default: what the repo's fence says now). */
  epoch?: number;
}

/** One actor's latest state, fenced by the version it was read at. */
export interface BlogWrite {
  blogId: string;
  instanceId: string;
  expectedVersion: number;
  status: string;
  seq: number;
  snapshot: unknown;
  machineVersion: number;
  view: Record<string, unknown>;
  wakeAt: Date | null;
  events: OutboxEvent[];
  /** The lease epoch of the store's tenure that made it (default: what the repo's fence says now). */
  epoch?: number;
}

/** Filters of the list endpoint; `cursor` is the opaque value of a previous page. */
export interface ListQuery {
  instanceId?: string;
  status?: string;
  limit: number;
  cursor?: { createdAt: Date; blogId: string };
}

/** Blogs a store's owner keeps in memory: working, or waiting for a working slot. */
export const LIVE_STATUSES: readonly BlogStatus[] = ['PENDING', ...WORKING_STATUSES];

/** The blog repository: create, commit transitions in batches, read for the API and for rehydration. */
export interface BlogRepo {
  /** Inserts the blog and its first event; `false` when the id exists already (nothing changes then). */
  insert(blog: NewBlog): Promise<boolean>;
  /** Inserts many new blogs in one statement; the ids inserted (those the fence refuses are added to `fenced`). */
  insertMany(list: NewBlog[], fenced?: Set<string>): Promise<Set<string>>;
  /** Commits many actors' transitions in one statement; the ids whose version had moved (not applied). */
  commit(writes: BlogWrite[]): Promise<Set<string>>;
  get(blogId: string): Promise<BlogRow | undefined>;
  getMany(blogIds: readonly string[]): Promise<BlogRow[]>;
  list(q: ListQuery): Promise<BlogRow[]>;
  countByStatus(): Promise<Array<{ instanceId: string; status: string; n: number }>>;
  loadWorking(instanceIds: string[]): Promise<BlogRow[]>;
  countQuarantined(): Promise<number>;
  /** Sets a blog aside for good (fenced like every write of the store's blogs). */
  quarantine(blogId: string, instanceId: string, reason: string): Promise<void>;
}
