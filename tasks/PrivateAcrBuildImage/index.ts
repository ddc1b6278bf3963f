import { join } from 'node:path';
import * as tl from 'azure-pipelines-task-lib/task.js';
import { buildContainerImage, renderBuildSummary } from '../../src/build/buildImage.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets, taskTempDirectory } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const { auth, registry, ...inputs } = readInputs();
  // The agent's work folder outlives the job on a persistent agent: a rebuild there skips reading unchanged layers.
  const workFolder = tl.getVariable('Agent.WorkFolder');
  const cacheFile = workFolder ? join(workFolder, '_private-acr-build', 'layer-diff-ids.json') : undefined;
  const result = await buildContainerImage({ ...inputs, host: registry, auth, transport: agentTransportOptions(), tempDir: taskTempDirectory(), cacheFile, logger: taskLogger, secrets: taskSecrets });
  tl.setVariable('digest', result.digest, false, true);
  tl.setVariable('imageRef', result.imageRef, false, true);
  attachSummary('build-image', renderBuildSummary(result));
  tl.setResult(tl.TaskResult.Succeeded, `Built and pushed ${result.imageRef}`);
});
