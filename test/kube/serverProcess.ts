// The control plane's long-running servers (etcd, kube-apiserver,
// kube-controller-manager): output goes to a log file, and the process is
// killed with the test process if a test dies before stopping it.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { killOnExit, stopChild } from '../env/processes.js';

export interface ServerProcess {
  name: string;
  logPath: string;
  /** Exit code or signal once the process ended (or failed to start), else undefined. */
  exitStatus(): string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `binary` with `args` (never a shell), stdout and stderr appended to `logPath`. */
export function startServerProcess(name: string, binary: string, args: string[], logPath: string): ServerProcess {
  const logFd = openSync(logPath, 'a', 0o600);
  const child = spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const forget = killOnExit(child);
  let status: string | undefined;
  child.once('exit', (code, signal) => {
    status = signal ?? String(code);
    forget();
  });
  child.once('error', (error) => {
    status = `failed to start: ${error.message}`;
    forget();
  });
  return {
    name,
    logPath,
    exitStatus: () => status,
    stop: (graceMs = 5000) => stopChild(child, graceMs),
  };
}

/** The last `count` lines of a process log, for error messages. */
export async function logTail(logPath: string, count = 15): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-count).join('\n');
}
