import * as tl from 'azure-pipelines-task-lib/task.js';
import { deployToCluster, renderDeploySummary } from '../../src/deploy/deploy.js';
import { agentTransportOptions, attachSummary, bundledFile, runTask, taskLogger, taskSecrets, taskTempDirectory } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (signal) => {
  const inputs = readInputs();
  const credentialPlugin = { command: process.execPath, args: [bundledFile('kubeCredential.js')] };
  const result = await deployToCluster({ ...inputs, transport: agentTransportOptions(), tempDir: taskTempDirectory(), credentialPlugin, logger: taskLogger, secrets: taskSecrets, signal });
  if (result.release) tl.setVariable('releaseRevision', String(result.release.revision), false, true);
  if (result.appliedObjects) tl.setVariable('appliedObjects', result.appliedObjects.join(','), false, true);
  attachSummary('aks-deploy', renderDeploySummary(result));
  const what = result.release ? `release ${result.release.name} revision ${result.release.revision}` : `${result.appliedObjects?.length ?? 0} object(s)`;
  tl.setResult(tl.TaskResult.Succeeded, `Deployed ${what} to namespace ${result.namespace}`);
});
