/** The machine and the code the figures came from: they mean little without them. */
import os from 'node:os';
import pg from 'pg';
import { measuredCommit } from './commit';
import { ADMIN_URL } from './database';

/** Cores, CPU, memory, Node and PostgreSQL versions, when, and the commit measured. */
export interface MachineInfo {
  date: string;
  /** The commit checked out (`-dirty`: with uncommitted changes to the code). */
  commit: string;
  cores: number;
  cpu: string;
  memoryGb: number;
  node: string;
  postgres: string;
  platform: string;
}

/** Reads the machine and asks the server for its version. */
export async function describeMachine(): Promise<MachineInfo> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v");
  await client.end();
  return {
    date: new Date().toISOString(),
    commit: measuredCommit(),
    cores: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    postgres: rows[0]?.v ?? 'unknown',
    platform: `${os.platform()} ${os.release()}`,
  };
}
