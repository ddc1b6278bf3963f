import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { parseRegistryHost, validateRepository, validateTag } from '../../src/oci/reference.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { listInput, wholeNumberInput } from '../common/inputs.js';
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
  const tags = listInput('tags');
  if (tags.length === 0) throw new InputError('tags', 'no tag given; list one tag per line, for example $(Build.BuildId).');
  return {
    auth: readRegistryAuth(),
    registry: parseRegistryHost(tl.getInput('registry', true)!),
    repository: validateRepository(tl.getInput('repository', true)!),
    imagePath: tl.getInput('imagePath', true)!,
    tags: tags.map((tag) => validateTag(tag)),
    concurrency: wholeNumberInput('concurrency', 4, 1, 32),
  };
}
