import { dirname, resolve } from 'node:path';
import * as tl from 'azure-pipelines-task-lib/task.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { timestamp, type BuildDefinition } from '../../src/build/assemble.js';
import type { BuilderChoice, BuildkitSettings } from '../../src/build/buildImage.js';
import { parseBuildArgs, parseBuildSecrets, parseLabels, parsePlatforms, sourceDateEpoch } from '../../src/build/options.js';
import { InputError } from '../../src/errors.js';
import { parseRegistryHost, validateRepository, validateTag } from '../../src/oci/reference.js';
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
}

const BUILDERS: BuilderChoice[] = ['auto', 'assemble', 'buildkit'];

export function readInputs(): BuildImageInputs {
  const tags = [...new Set(tl.getDelimitedInput('tags', /[\r\n]+/, true).map((tag) => tag.trim()).filter(Boolean))];
  if (tags.length === 0) throw new InputError('tags', 'no tag given; list one tag per line, for example $(Build.BuildId).');
  const dockerfile = resolve(tl.getInput('dockerfile', true)!);
  const builder = (tl.getInput('builder') || 'auto') as BuilderChoice;
  if (!BUILDERS.includes(builder)) throw new InputError('builder', `'${builder}' is not one of ${BUILDERS.join(', ')}.`);
  const buildArgs = parseBuildArgs(tl.getInput('buildArgs') ?? '');
  const source = tl.getVariable('Build.Repository.Uri');
  const revision = tl.getVariable('Build.SourceVersion');
  const epoch = sourceDateEpoch(buildArgs, process.env);
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
    context: resolve(tl.getInput('context')?.trim() || dirname(dockerfile)),
    buildArgs,
    target: tl.getInput('target')?.trim() || undefined,
    platforms: parsePlatforms(tl.getInput('platforms') || 'linux/amd64'),
    labels,
    builder,
    buildkit: {
      address: tl.getInput('buildkitAddress')?.trim() || undefined,
      certificates: tl.getInput('buildkitCertificates')?.trim() || undefined,
      cacheRepository: tl.getInput('cacheRepository')?.trim() ? validateRepository(tl.getInput('cacheRepository')!, 'cacheRepository') : undefined,
      secrets: parseBuildSecrets(tl.getInput('buildSecrets') ?? ''),
    },
    outputPath: tl.getInput('outputPath')?.trim() ? resolve(tl.getInput('outputPath')!.trim()) : undefined,
    sourceDateEpoch: epoch,
  };
}
