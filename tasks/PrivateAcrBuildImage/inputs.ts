import { dirname, join, resolve } from 'node:path';
import * as tl from 'azure-pipelines-task-lib/task.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { timestamp, type BuildDefinition } from '../../src/build/assemble.js';
import type { BuilderChoice } from '../../src/build/buildImage.js';
import { daemonHost, type BuildkitSettings } from '../../src/build/buildkitBuild.js';
import { parseBuildArgs, parseBuildSecrets, parseLabels, parsePlatforms, sourceDateEpoch, type BuildSecret } from '../../src/build/options.js';
import { InputError } from '../../src/errors.js';
import { parseRegistryHost, validateRepository, validateTag } from '../../src/oci/reference.js';
import { listInput, optionalInput } from '../common/inputs.js';
import { readRegistryAuth } from '../common/registryAuth.js';

/** The task.json inputs of PrivateAcrBuildImage@1, validated. Names match task.json exactly. */
export interface BuildImageInputs extends BuildDefinition {
  auth: RegistryAuth;
  registry: string;
  repository: string;
  tags: string[];
  builder: BuilderChoice;
  buildkit: BuildkitSettings;
  outputPath?: string;
  /** Where rebuilds on this agent remember layers (see DiffIdCache); none outside an agent. */
  cacheFile?: string;
}

const BUILDERS: BuilderChoice[] = ['auto', 'assemble', 'buildkit'];

/** Where the agent chart's builder mounts the agents' BuildKit client certificate. */
const AGENT_BUILDKIT_CERTIFICATES = '/azp/buildkit';

/**
 * `buildkitAddress`, else the agent's BUILDKIT_HOST (buildctl's own variable, which the agent
 * chart sets on its agents when it runs a builder), checked to be tcp://host:port.
 */
function buildkitAddress(): string | undefined {
  const address = optionalInput('buildkitAddress') ?? (process.env.BUILDKIT_HOST?.trim() || undefined);
  if (address) daemonHost(address);
  return address;
}

/** `buildkitCertificates`, else the chart's mount. The agent fills an empty file path input with the sources folder: that counts as empty. */
function buildkitCertificates(): string {
  const folder = optionalInput('buildkitCertificates');
  return resolve(folder && tl.filePathSupplied('buildkitCertificates') ? folder : AGENT_BUILDKIT_CERTIFICATES);
}

/** `buildSecrets`, each variable present; its value is registered as a secret before anything runs. */
function buildSecrets(): BuildSecret[] {
  const secrets = parseBuildSecrets(tl.getInput('buildSecrets') ?? '');
  for (const secret of secrets) {
    const value = process.env[secret.variable];
    if (value === undefined) {
      throw new InputError('buildSecrets', `the environment has no ${secret.variable} (for secret ${secret.id}); map the secret variable into the step with env: ${secret.variable}: $(…).`);
    }
    if (value) tl.setSecret(value);
  }
  return secrets;
}

export function readInputs(): BuildImageInputs {
  const tags = listInput('tags');
  if (tags.length === 0) throw new InputError('tags', 'no tag given; list one tag per line, for example $(Build.BuildId).');
  const dockerfile = resolve(tl.getInput('dockerfile', true)!);
  const builder = (optionalInput('builder') ?? 'auto') as BuilderChoice;
  if (!BUILDERS.includes(builder)) throw new InputError('builder', `'${builder}' is not one of ${BUILDERS.join(', ')}.`);
  const buildArgs = parseBuildArgs(tl.getInput('buildArgs') ?? '');
  const source = tl.getVariable('Build.Repository.Uri');
  const revision = tl.getVariable('Build.SourceVersion');
  const epoch = sourceDateEpoch(buildArgs, process.env);
  const cacheRepository = optionalInput('cacheRepository');
  const outputPath = optionalInput('outputPath');
  const workFolder = tl.getVariable('Agent.WorkFolder');
  const labels: Record<string, string> = {
    ...(source ? { 'org.opencontainers.image.source': source } : {}),
    ...(revision ? { 'org.opencontainers.image.revision': revision } : {}),
    ...(epoch !== undefined ? { 'org.opencontainers.image.created': timestamp(epoch) } : {}),
    ...parseLabels(tl.getInput('labels') ?? ''),
  };
  return {
    auth: readRegistryAuth(),
    registry: parseRegistryHost(tl.getInput('registry', true)!),
    repository: validateRepository(tl.getInput('repository', true)!),
    tags: tags.map((tag) => validateTag(tag)),
    dockerfile,
    context: resolve(optionalInput('context') ?? dirname(dockerfile)),
    buildArgs,
    target: optionalInput('target'),
    platforms: parsePlatforms(optionalInput('platforms') ?? 'linux/amd64'),
    labels,
    builder,
    buildkit: {
      address: buildkitAddress(),
      certificates: buildkitCertificates(),
      cacheRepository: cacheRepository && validateRepository(cacheRepository, 'cacheRepository'),
      secrets: buildSecrets(),
    },
    outputPath: outputPath && resolve(outputPath),
    sourceDateEpoch: epoch,
    // The agent's work folder outlives the job on a persistent agent: a rebuild there skips reading unchanged layers.
    cacheFile: workFolder && join(workFolder, '_private-acr-build', 'layer-diff-ids.json'),
  };
}
