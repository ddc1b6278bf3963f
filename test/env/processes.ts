// Child-process helpers for the servers and CLIs the tests run: stop them reliably (even when the
// test process dies) and run a CLI with argument arrays, never through a shell.
import { execFile, type ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Kills `child` if this process exits first (a crashed test must not leave a registry behind).
 * Returns a function that forgets the child once it was stopped normally.
 */
export function killOnExit(child: ChildProcess): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const orphan of running) orphan.kill('SIGKILL');
    });
  }
  running.add(child);
  return () => {
    running.delete(child);
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

export interface ToolResult {
  stdout: string;
  stderr: string;
}

export class ToolError extends Error {
  override readonly name = 'ToolError';
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Default 120 s: long enough for a real push, short enough to fail a hung test. */
  timeoutMs?: number;
}

/**
 * Runs `command args…` and resolves with its output; rejects with a ToolError whose message is one
 * line (the command name and the last line of stderr) and whose fields keep the full output.
 * Secrets belong in files or the environment, never in `args`.
 */
export async function runTool(command: string, args: string[], options: RunToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve({ stdout, stderr });
      const lastLine = stderr.trim().split('\n').pop() ?? '';
      const exitCode = typeof error.code === 'number' ? error.code : null;
      reject(new ToolError(`${command} ${args[0] ?? ''} failed (exit ${exitCode ?? error.signal ?? '?'}): ${lastLine || error.message}`, exitCode, stdout, stderr));
    });
  });
}
