// For callers with no line of sight to the API server: AKS run-command (PROTOCOLS.md). The files
// travel zipped as `context`, the command runs in a pod in the cluster with kubectl and helm, and
// authenticates with the caller's AKS-audience token (`clusterToken`). The SDK polls the 202 +
// Location operation until it has the result.
import type { TokenCredential } from '../azure/entra.js';
import { describeArmError } from '../azure/armPipeline.js';
import { UserError } from '../errors.js';
import type { HttpTransport } from '../http/transport.js';
import type { Logger } from '../log.js';
import { AKS_ENTRA_SCOPE } from '../kubernetes/access.js';
import { containerServiceClient, type AksCluster } from '../kubernetes/aks.js';
import { zipFolder } from '../archive/zip.js';

/** ARM keeps at most this much of a command's output. */
export const RUN_COMMAND_LOG_LIMIT = 512 * 1024;

export interface RunCommandOptions {
  target: AksCluster;
  credential: TokenCredential;
  transport: HttpTransport;
  /** A shell command line, run in the context folder. */
  command: string;
  /** Folder whose files are zipped into `context`. */
  contextFolder: string;
  logger: Logger;
  /** Between status polls unless ARM's Retry-After says otherwise. Default 5 s. */
  pollIntervalMs?: number;
}

/** Runs the command in the cluster; resolves with its logs when it exited 0, otherwise throws with the exit code and last log line. */
export async function runCommandInCluster(options: RunCommandOptions): Promise<string> {
  const client = containerServiceClient(options.target, options.credential, options.transport);
  const context = (await zipFolder(options.contextFolder)).toString('base64');
  const clusterToken = (await options.credential.getToken(AKS_ENTRA_SCOPE)).token;
  const where = `AKS cluster '${options.target.cluster}' in resource group '${options.target.resourceGroup}'`;
  options.logger.info(`Running in ${where}: ${options.command}`);
  let result;
  try {
    const poller = client.managedClusters.runCommand(options.target.resourceGroup, options.target.cluster, { command: options.command, context, clusterToken }, { updateIntervalInMs: options.pollIntervalMs ?? 5000 });
    poller.onProgress((state) => options.logger.info(`run-command: ${state.status}`));
    result = await poller.pollUntilDone();
  } catch (error) {
    throw describeArmError(error, {
      action: `run a command in ${where}`,
      permission: "'Azure Kubernetes Service Cluster User Role' and Microsoft.ContainerService/managedClusters/runcommand/action on the cluster",
    });
  }
  const logs = result.logs ?? '';
  for (const line of logs.split('\n')) if (line.trim()) options.logger.info(`  ${line}`);
  if (logs.length >= RUN_COMMAND_LOG_LIMIT) options.logger.warn(`The command's output reached the run-command limit of ${RUN_COMMAND_LOG_LIMIT / 1024} kB; earlier lines may be missing.`);
  if (result.provisioningState !== 'Succeeded') {
    throw new UserError(`The run-command in ${where} ended ${result.provisioningState ?? 'without a state'}: ${result.reason ?? 'no reason given'}`);
  }
  if (result.exitCode !== 0) {
    const last = logs.trim().split('\n').at(-1) ?? '';
    throw new UserError(`The command in ${where} exited with code ${result.exitCode}: ${last}`);
  }
  return logs;
}

/** POSIX shell quoting of one argument, for the command line run-command takes. */
export function shellQuote(argument: string): string {
  return /^[\w@%+=:,./-]+$/.test(argument) ? argument : `'${argument.replace(/'/g, `'\\''`)}'`;
}

export function shellCommand(program: string, args: readonly string[]): string {
  return [program, ...args].map(shellQuote).join(' ');
}
