import { deployToCluster, renderDeploySummary } from '../../src/deploy/deploy.js';
import { bundledFile, runTask } from '../common/host.js';
import { readInputs } from './inputs.js';

void runTask(async (context) => {
  const credentialPlugin = { command: process.execPath, args: [bundledFile('kubeCredential.js')] };
  const result = await deployToCluster({ ...context, ...readInputs(), credentialPlugin });
  const outputs: Record<string, string> = {};
  if (result.release) outputs.releaseRevision = String(result.release.revision);
  if (result.appliedObjects) outputs.appliedObjects = result.appliedObjects.join(',');
  const what = result.release ? `release ${result.release.name} revision ${result.release.revision}` : `${result.appliedObjects?.length ?? 0} object(s)`;
  return { outputs, summary: renderDeploySummary(result), message: `Deployed ${what} to namespace ${result.namespace}` };
});
