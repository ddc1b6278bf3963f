import * as tl from 'azure-pipelines-task-lib/task.js';
import { pushContainerImage, renderPushSummary } from '../../src/image/pushImage.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets, taskTempDirectory } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const inputs = readInputs();
  const result = await pushContainerImage({
    host: inputs.registry,
    auth: inputs.auth,
    repository: inputs.repository,
    imagePath: inputs.imagePath,
    tags: inputs.tags,
    concurrency: inputs.concurrency,
    transport: agentTransportOptions(),
    tempDir: taskTempDirectory(),
    logger: taskLogger,
    secrets: taskSecrets,
  });
  tl.setVariable('digest', result.digest, false, true);
  tl.setVariable('imageRef', result.imageRef, false, true);
  attachSummary('push-image', renderPushSummary(result));
  tl.setResult(tl.TaskResult.Succeeded, `Pushed ${result.imageRef}`);
});
