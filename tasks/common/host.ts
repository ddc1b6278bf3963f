import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tl from 'azure-pipelines-task-lib/task.js';
import { UserError, errorMessage } from '../../src/errors.js';
import type { TransportOptions } from '../../src/http/transport.js';
import type { Logger, SecretRegistry } from '../../src/log.js';

/** The core's logger, written to the agent's log. */
export const taskLogger: Logger = {
  info: (message) => console.log(message),
  warn: (message) => tl.warning(message),
  debug: (message) => tl.debug(message),
};

/** Every secret goes through here so the agent masks it in every log line that follows. */
export const taskSecrets: SecretRegistry = { register: (secret) => tl.setSecret(secret) };

/** TLS trust and proxy from the agent's own settings (Agent.CAInfo, Agent.ProxyUrl …); retries and stalls are warnings in the log. */
export function agentTransportOptions(): TransportOptions {
  const options: TransportOptions = { userAgent: `private-aks-acr-pipelines (${tl.getVariable('AGENT_VERSION') ?? 'agent'})`, logger: taskLogger };
  const certificates = tl.getHttpCertConfiguration();
  if (certificates?.caFile) options.caCertificates = [readFileSync(certificates.caFile, 'utf8')];
  const proxy = tl.getHttpProxyConfiguration();
  if (proxy?.proxyUrl) {
    if (proxy.proxyPassword) tl.setSecret(proxy.proxyPassword);
    options.proxy = { url: proxy.proxyUrl, username: proxy.proxyUsername, password: proxy.proxyPassword, bypass: proxy.proxyBypassHosts };
  }
  return options;
}

/**
 * The agent's temp folder, wiped after every job; the OS temp folder outside an agent. For files
 * the agent reads after the task ends (summaries, test results, reports); everything else goes in
 * taskTempDirectory().
 */
export function agentTempDirectory(): string {
  return tl.getVariable('Agent.TempDirectory') ?? process.env.RUNNER_TEMP ?? '/tmp';
}

let taskTemp: string | undefined;

/**
 * A private (0700) folder for this run inside the agent's temp folder. The cores put every file of
 * theirs here — kubeconfig, registry login, overrides, run-command context, unpacked inputs — and
 * runTask removes it when the task ends, whether it succeeded, failed or was cancelled.
 */
export function taskTempDirectory(): string {
  taskTemp ??= mkdtempSync(join(agentTempDirectory(), 'task-'));
  return taskTemp;
}

function removeTaskTempDirectory(): void {
  if (taskTemp) rmSync(taskTemp, { recursive: true, force: true });
}

/** A file of the task's bundle, beside the running index.js (a program the task starts, such as helm's credential plug-in). */
export function bundledFile(name: string): string {
  return join(dirname(process.argv[1] ?? '.'), name);
}

/** Writes a markdown run summary and attaches it to the run. It stays in the agent's temp folder: the agent uploads it after the task. */
function attachSummary(markdown: string): void {
  const task = basename(dirname(process.argv[1] ?? 'task'));
  const path = join(agentTempDirectory(), `${task}-summary-${Date.now()}.md`);
  writeFileSync(path, markdown, { mode: 0o600 });
  tl.uploadSummary(path);
}

/** What every core takes from its host, ready to spread into its options. */
export interface TaskContext {
  transport: TransportOptions;
  tempDir: string;
  logger: Logger;
  secrets: SecretRegistry;
  /** Aborts when the agent cancels the task. */
  signal: AbortSignal;
}

/** How a task ended well: its output variables, run summary and result message. */
export interface TaskOutcome {
  message: string;
  /** Output variables by their task.json names. */
  outputs?: Record<string, string>;
  /** Markdown attached to the run. */
  summary?: string;
  /**
   * Default `succeeded`. `withIssues`: succeeded with findings the user should read; `failed`: the task did its work
   * (outputs and summary still reported) and its verdict is a failure with `message` as the line.
   */
  status?: 'succeeded' | 'withIssues' | 'failed';
}

function report(outcome: TaskOutcome): void {
  for (const [name, value] of Object.entries(outcome.outputs ?? {})) tl.setVariable(name, value, false, true);
  if (outcome.summary) attachSummary(outcome.summary);
  const results = { succeeded: tl.TaskResult.Succeeded, withIssues: tl.TaskResult.SucceededWithIssues, failed: tl.TaskResult.Failed };
  tl.setResult(results[outcome.status ?? 'succeeded'], outcome.message);
  if (outcome.status === 'failed') process.exitCode = 1;
}

/**
 * How long a cancelled task's core may take to stop (helm records its release as failed, folders
 * are removed) before the process exits anyway: the agent sends SIGINT, then SIGTERM after 7.5 s,
 * then kills the process tree after 2.5 s more (microsoft/azure-pipelines-agent, ProcessInvoker).
 */
const CANCEL_GRACE_MS = 5000;

/**
 * Runs a task's main function. The one place errors are caught: a UserError is the single line
 * the user needs; anything else is a bug, so its stack goes to the debug log. Also the one place
 * cancellation is handled: on SIGINT or SIGTERM `signal` aborts, the core gets CANCEL_GRACE_MS to
 * stop what it started, then the task's temp folder is removed and the process exits failed. A
 * second signal cuts the grace short.
 */
export async function runTask(main: (context: TaskContext) => Promise<TaskOutcome>): Promise<void> {
  const cancel = new AbortController();
  let stopRequested: (name: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (stopRequested = resolve));
  const onSignal = (name: NodeJS.Signals) => {
    if (cancel.signal.aborted) exitCancelled(name);
    stopRequested(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const context = (): TaskContext => ({ transport: agentTransportOptions(), tempDir: taskTempDirectory(), logger: taskLogger, secrets: taskSecrets, signal: cancel.signal });
  const work = Promise.resolve()
    .then(() => main(context()))
    .then(report)
    .then(
    () => ({ failed: false as const }),
    (error: unknown) => ({ failed: true as const, error }),
  );
  const outcome = await Promise.race([work, stopped.then((name) => ({ signal: name }))]);
  if ('signal' in outcome) {
    cancel.abort(new UserError(`The task was cancelled (${outcome.signal}).`));
    await Promise.race([work, sleep(CANCEL_GRACE_MS)]);
    exitCancelled(outcome.signal);
  }
  // Done: a late signal gets node's default again, so nothing left open can make the process ignore it.
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  removeTaskTempDirectory();
  if (outcome.failed) {
    const { error } = outcome;
    if (!(error instanceof UserError)) tl.debug(error instanceof Error ? (error.stack ?? error.message) : String(error));
    tl.setResult(tl.TaskResult.Failed, errorMessage(error).split(/\r?\n/)[0]);
    process.exitCode = 1;
  }
}

function exitCancelled(signal: NodeJS.Signals): never {
  removeTaskTempDirectory();
  tl.setResult(tl.TaskResult.Failed, `Cancelled (${signal}); the task's temporary files are removed.`);
  // Sockets and timers of the interrupted work would keep the process alive past the agent's kill.
  process.exit(1);
}
