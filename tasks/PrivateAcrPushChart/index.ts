import { pushHelmChart, renderChartSummary } from '../../src/chart/pushChart.js';
import { runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const { registry, ...inputs } = readInputs();
  const result = await pushHelmChart({ ...context, ...inputs, host: registry });
  return {
    outputs: { chartRef: result.chartRef, chartVersion: result.chartVersion, digest: result.digest },
    summary: renderChartSummary(result),
    message: `Pushed ${result.reference}@${result.digest}`,
  };
});
