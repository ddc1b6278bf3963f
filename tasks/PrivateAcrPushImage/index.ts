import { pushContainerImage, renderPushSummary } from '../../src/image/pushImage.js';
import { runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const { registry, ...inputs } = readInputs();
  const result = await pushContainerImage({ ...context, ...inputs, host: registry });
  return {
    outputs: { digest: result.digest, imageRef: result.imageRef },
    summary: renderPushSummary(result),
    message: `Pushed ${result.imageRef}`,
  };
});
