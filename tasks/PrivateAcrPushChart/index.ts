import * as tl from 'azure-pipelines-task-lib/task.js';
import { pushHelmChart, renderChartSummary } from '../../src/chart/pushChart.js';
import { agentTransportOptions, attachSummary, runTask, taskLogger, taskSecrets } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async () => {
  const inputs = readInputs();
  const result = await pushHelmChart({ ...inputs, host: inputs.registry, transport: agentTransportOptions(), logger: taskLogger, secrets: taskSecrets });
  tl.setVariable('chartRef', result.chartRef, false, true);
  tl.setVariable('chartVersion', result.chartVersion, false, true);
  tl.setVariable('digest', result.digest, false, true);
  attachSummary('push-chart', renderChartSummary(result));
  tl.setResult(tl.TaskResult.Succeeded, `Pushed ${result.reference}@${result.digest}`);
});
