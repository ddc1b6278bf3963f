import * as tl from 'azure-pipelines-task-lib/task.js';
import { deployToCluster } from '../../src/deploy/deploy.js';
import { agentTempDirectory, agentTransportOptions, runTask, taskLogger, taskSecrets } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const inputs = readInputs();
  const result = await deployToCluster({ ...inputs, transport: agentTransportOptions(), tempDir: agentTempDirectory(), logger: taskLogger, secrets: taskSecrets });
  if (result.releaseRevision !== undefined) tl.setVariable('releaseRevision', String(result.releaseRevision), false, true);
  if (result.appliedObjects) tl.setVariable('appliedObjects', result.appliedObjects.join(','), false, true);
  const what = result.releaseRevision !== undefined ? `release revision ${result.releaseRevision}` : `${result.appliedObjects?.length ?? 0} object(s)`;
  tl.setResult(tl.TaskResult.Succeeded, `Deployed ${what} to namespace ${result.namespace}`);
});
