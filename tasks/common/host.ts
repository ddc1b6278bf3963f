import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** The agent's temp folder, wiped after every job; the OS temp folder outside an agent. */
export function agentTempDirectory(): string {
  return tl.getVariable('Agent.TempDirectory') ?? process.env.RUNNER_TEMP ?? '/tmp';
}

/** Writes a markdown run summary and attaches it to the run. */
export function attachSummary(name: string, markdown: string): void {
  const path = join(agentTempDirectory(), `${name}-${Date.now()}.md`);
  writeFileSync(path, markdown, { mode: 0o600 });
  tl.uploadSummary(path);
}

/**
 * The one place errors are caught. A UserError is the single line the user needs; anything else
 * is a bug, so its stack goes to the debug log.
 */
export async function runTask(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    if (!(error instanceof UserError)) tl.debug(error instanceof Error ? (error.stack ?? error.message) : String(error));
    tl.setResult(tl.TaskResult.Failed, errorMessage(error).split(/\r?\n/)[0]);
    process.exitCode = 1;
  }
}
