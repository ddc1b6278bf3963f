import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';

const CANCEL_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs `work` with a fresh owner-only folder under `parent` for credentials and caches, and removes
 * it afterwards — also when the agent cancels the job, which it does with SIGINT and then SIGTERM:
 * `cancelled` fires (so child processes can be stopped), the folder goes, then the signal takes its
 * default course.
 */
export async function withPrivateFolder<T>(parent: string, prefix: string, work: (folder: string, cancelled: AbortSignal) => Promise<T>): Promise<T> {
  // mkdtemp creates the folder with mode 0700.
  const folder = await mkdtemp(join(parent, prefix));
  const cancel = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    cancel.abort();
    rmSync(folder, { recursive: true, force: true });
    for (const name of CANCEL_SIGNALS) process.removeListener(name, onSignal);
    process.kill(process.pid, signal);
  };
  for (const name of CANCEL_SIGNALS) process.on(name, onSignal);
  try {
    return await work(folder, cancel.signal);
  } finally {
    for (const name of CANCEL_SIGNALS) process.removeListener(name, onSignal);
    await rm(folder, { recursive: true, force: true });
  }
}
