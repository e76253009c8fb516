import { randomUUID } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { StageFailureError } from '../../errors';

// Same rule as upstream validation; checked again because these ids become file names.
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws a non-retryable `INVALID_ID` unless `value` is a safe id. */
export function assertId(kind: string, value: string): void {
  if (!ID_PATTERN.test(value)) throw new StageFailureError('INVALID_ID', `${kind} is not a valid id`, false);
}

/** `<dataDir>/published/<instanceId>` plus `parts`, proven to stay inside `<dataDir>/published`. */
export function storePath(dataDir: string, instanceId: string, ...parts: string[]): string {
  assertId('instanceId', instanceId);
  const root = resolve(dataDir, 'published');
  const target = resolve(root, instanceId, ...parts);
  const rel = relative(root, target);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new StageFailureError('INVALID_ID', 'path escapes the data directory', false);
  }
  return target;
}

/** A unique sibling temp name, so a reader never sees a half-written file and writers never share one. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${randomUUID()}.tmp`);
}

/** Writes `content` to a temp file and renames it over `target` (atomic on one filesystem). */
export async function writeFileAtomic(target: string, content: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const temp = tempPathFor(target);
  try {
    await writeFile(temp, content, 'utf8');
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
