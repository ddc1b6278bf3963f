import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { parseRegistryHost, validateRepository, validateTag } from '../../src/oci/reference.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { readRegistryAuth } from '../common/registryAuth.js';

/** The task.json inputs of PrivateAcrPushImage@1, validated. Names match task.json exactly. */
export interface PushImageInputs {
  auth: RegistryAuth;
  registry: string;
  repository: string;
  imagePath: string;
  tags: string[];
  concurrency: number;
}

export function readInputs(): PushImageInputs {
  const tags = [...new Set(tl.getDelimitedInput('tags', /[\r\n]+/, true).map((tag) => tag.trim()).filter(Boolean))];
  if (tags.length === 0) throw new InputError('tags', 'no tag given; list one tag per line, for example $(Build.BuildId).');
  return {
    auth: readRegistryAuth(),
    registry: parseRegistryHost(tl.getInput('registry', true)!),
    repository: validateRepository(tl.getInput('repository', true)!),
    imagePath: tl.getInput('imagePath', true)!,
    tags: tags.map((tag) => validateTag(tag)),
    concurrency: readConcurrency(),
  };
}

function readConcurrency(): number {
  const value = tl.getInput('concurrency') || '4';
  const concurrency = Number(value);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32) {
    throw new InputError('concurrency', `'${value}' is not a whole number from 1 to 32.`);
  }
  return concurrency;
}
