import * as tl from 'azure-pipelines-task-lib/task.js';
import { scanImage } from '../../src/scan/scanImage.js';
import { renderScanSummary } from '../../src/scan/summary.js';
import { runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const result = await scanImage({ ...context, ...readInputs() });
  new tl.TestPublisher('JUnit').publish(result.junitPath, 'false', '', '', `Vulnerabilities in ${result.subject}`, 'false');
  return {
    outputs: { vulnerabilities: String(result.blocking.length), reportPath: result.reportPath },
    summary: renderScanSummary(result),
    // The gate's verdict: the reports are out either way.
    status: result.failure ? 'failed' : 'succeeded',
    message: result.failure ?? `No vulnerability at ${result.failOn.join(', ') || 'any gated severity'} in ${result.subject}`,
  };
});
