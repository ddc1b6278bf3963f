import * as tl from 'azure-pipelines-task-lib/task.js';
import { importImages, renderImportSummary } from '../../src/image/importImages.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const inputs = readInputs();
  const result = await importImages({ ...inputs, transport: agentTransportOptions(), logger: taskLogger, secrets: taskSecrets });
  tl.setVariable('digests', JSON.stringify(result.digests), false, true);
  attachSummary('import-images', renderImportSummary(result, inputs.platforms));
  tl.setResult(tl.TaskResult.Succeeded, `Imported ${result.images.length} image(s) into ${inputs.registry}`);
});
