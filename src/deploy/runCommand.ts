// For callers with no line of sight to the API server: AKS run-command
// (https://learn.microsoft.com/azure/aks/access-private-cluster, REST: Managed Clusters - Run Command).
// The files travel zipped as `context` and are all the command sees of the agent; it runs in a pod
// in the cluster with kubectl and helm and authenticates with the caller's AKS-audience token
// (`clusterToken`). The SDK polls the 202 + Location operation until it has the result.
import type { TokenCredential } from '../azure/entra.js';
import { describeArmError } from '../azure/armPipeline.js';
import { UserError } from '../errors.js';
import type { HttpTransport } from '../http/transport.js';
import type { Logger } from '../log.js';
import { AKS_ENTRA_SCOPE } from '../kubernetes/access.js';
import { containerServiceClient, type AksCluster } from '../kubernetes/aks.js';
import { zipFolder } from '../archive/zip.js';
import { shellCommand, shellQuote } from '../shell.js';

/** ARM keeps at most this much of a command's output. */
const RUN_COMMAND_LOG_LIMIT = 512 * 1024;

interface RunCommandOptions {
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
  /** Stops polling (the command itself runs on in the cluster: run-command cannot be cancelled). */
  signal?: AbortSignal;
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
    const poller = client.managedClusters.runCommand(
      options.target.resourceGroup,
      options.target.cluster,
      { command: options.command, context, clusterToken },
      { updateIntervalInMs: options.pollIntervalMs ?? 5000, abortSignal: options.signal },
    );
    poller.onProgress((state) => options.logger.info(`run-command: ${state.status}`));
    result = await poller.pollUntilDone({ abortSignal: options.signal });
  } catch (error) {
    options.signal?.throwIfAborted();
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

/** One program run by the command, with what to call it when it fails (`kubectl apply`). */
export interface CommandStep {
  label: string;
  program: string;
  args: readonly string[];
}

/** The file a step's stderr goes to, so its last line can be quoted when it fails. */
const STEP_ERRORS = '.step-errors';

/**
 * A POSIX shell script that runs `steps` in order and stops at the first failure. Before it exits 1
 * it runs every diagnostic (each may fail on its own: RBAC that refused the step may refuse listing
 * pods too) and then prints `<label> failed: <last stderr line of the step>` as its last line,
 * which is what the task quotes as the error.
 */
export function commandScript(steps: readonly CommandStep[], diagnostics: readonly CommandStep[]): string {
  const explain = diagnostics.map((step) => `echo ${shellQuote(`--- ${step.label}`)}; ${shellCommand(step.program, step.args)} || true`).join('; ');
  const lines = [
    `failed() { reason=$(grep -v '^[[:space:]]*$' ${STEP_ERRORS} | tail -n 1); ${explain ? `${explain}; ` : ''}printf '%s failed: %s\\n' "$1" "\${reason:-exit code $status}"; exit 1; }`,
    ...steps.map((step) => `${shellCommand(step.program, step.args)} 2>${STEP_ERRORS}; status=$?; cat ${STEP_ERRORS} >&2; [ "$status" -eq 0 ] || failed ${shellQuote(step.label)}`),
  ];
  return lines.join('; ');
}
