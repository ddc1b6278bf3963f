import * as tl from 'azure-pipelines-task-lib/task.js';
import { UserError } from '../../src/errors.js';
import { scanImage } from '../../src/scan/scanImage.js';
import { renderScanSummary } from '../../src/scan/summary.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets, taskTempDirectory } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (signal) => {
  const result = await scanImage({ ...readInputs(), tempDir: taskTempDirectory(), signal, transport: agentTransportOptions(), logger: taskLogger, secrets: taskSecrets });
  tl.setVariable('vulnerabilities', String(result.blocking.length), false, true);
  tl.setVariable('reportPath', result.reportPath, false, true);
  attachSummary('scan-image', renderScanSummary(result));
  new tl.TestPublisher('JUnit').publish(result.junitPath, 'false', '', '', `Vulnerabilities in ${result.subject}`, 'false');
  if (result.failure) throw new UserError(result.failure);
  tl.setResult(tl.TaskResult.Succeeded, `No vulnerability at ${result.failOn.join(', ') || 'any gated severity'} in ${result.subject}`);
});
