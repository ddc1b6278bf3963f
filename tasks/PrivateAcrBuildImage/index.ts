import { buildContainerImage, renderBuildSummary } from '../../src/build/buildImage.js';
import { runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const { registry, ...inputs } = readInputs();
  const result = await buildContainerImage({ ...context, ...inputs, host: registry });
  return {
    outputs: { digest: result.digest, imageRef: result.imageRef },
    summary: renderBuildSummary(result),
    message: `Built and pushed ${result.imageRef}`,
  };
});
