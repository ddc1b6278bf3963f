// Running the CLIs the tasks drive (helm, buildctl, Trivy): an argument array and no shell, output
// relayed line by line as it comes, and a bounded stop — when the job is cancelled the tool gets its
// own clean-stop signal first and SIGKILL after a grace period, so nothing outlives the task.
import { spawn } from 'node:child_process';
import { UserError } from './errors.js';

export interface CliRunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Each non-empty stderr line, as it arrives. */
  onStderrLine: (line: string) => void;
  /** Each non-empty stdout line, as it arrives; without it stdout is collected and returned. */
  onStdoutLine?: (line: string) => void;
  /** Aborting stops the tool: `stopSignal`, then SIGKILL after `stopGraceMs`. */
  signal?: AbortSignal;
  /** The signal the tool answers by stopping cleanly (helm records the release as failed on SIGTERM; buildctl cancels the build on SIGINT). */
  stopSignal: NodeJS.Signals;
  stopGraceMs: number;
  /** SIGKILL after this long whatever happens; the tool's own timeout should end it first. */
  killAfterMs?: number;
  /** The error line when the tool is not installed. */
  notFound: string;
}

export interface CliExit {
  /** Null when a signal ended it. */
  code: number | null;
  /** Collected stdout (empty with `onStdoutLine`). */
  stdout: string;
  stderr: string;
  /** It ran past `killAfterMs` and was killed. */
  timedOut: boolean;
}

/** Calls `onLine` with each complete non-empty line of a text stream; the last one when it ends. */
function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void, onText?: (text: string) => void): () => void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    onText?.(chunk);
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onLine(line);
  });
  return () => {
    if (partial.trim()) onLine(partial);
    partial = '';
  };
}

/** Runs `command` to its end; rejects only when it cannot start. The exit code is the caller's to judge. */
export async function runCli(command: string, args: string[], options: CliRunOptions): Promise<CliExit> {
  options.signal?.throwIfAborted();
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const flushStderr = splitLines(child.stderr, options.onStderrLine, (text) => (stderr += text));
  const flushStdout = options.onStdoutLine ? splitLines(child.stdout, options.onStdoutLine) : undefined;
  if (!options.onStdoutLine) child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  let timedOut = false;
  const killer = options.killAfterMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.killAfterMs);
  const stop = () => {
    child.kill(options.stopSignal);
    setTimeout(() => child.kill('SIGKILL'), options.stopGraceMs).unref();
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new UserError(options.notFound) : error));
      child.on('close', resolve);
    });
    flushStderr();
    flushStdout?.();
    return { code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(killer);
    options.signal?.removeEventListener('abort', stop);
  }
}
