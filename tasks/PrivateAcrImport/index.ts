import { importImages, renderImportSummary } from '../../src/image/importImages.js';
import { runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const { registry, ...inputs } = readInputs();
  const result = await importImages({ ...context, ...inputs, registry });
  return {
    outputs: { digests: JSON.stringify(result.digests) },
    summary: renderImportSummary(result, inputs.platforms),
    message: `Imported ${result.images.length} image(s) into ${registry}`,
  };
});
