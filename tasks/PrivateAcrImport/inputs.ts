import * as tl from 'azure-pipelines-task-lib/task.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { InputError } from '../../src/errors.js';
import { parseImportLines, type ImportLine } from '../../src/image/importImages.js';
import { parsePlatforms, type Platform } from '../../src/oci/copy.js';
import { parseRegistryHost } from '../../src/oci/reference.js';
import { optionalInput, requiredInput, wholeNumberInput } from '../common/inputs.js';
import { readRegistryAuth } from '../common/registryAuth.js';

/** The task.json inputs of PrivateAcrImport@1, validated. Names match task.json exactly. */
export interface ImportInputs {
  auth: RegistryAuth;
  registry: string;
  images: ImportLine[];
  sourceCredentials?: { host: string; username: string; password: string };
  platforms?: Platform[];
  concurrency: number;
}

export function readInputs(): ImportInputs {
  const platforms = parsePlatforms(optionalInput('platforms') ?? '', 'platforms');
  return {
    auth: readRegistryAuth(),
    registry: parseRegistryHost(tl.getInput('registry', true)!),
    images: parseImportLines(requiredInput('images', "lists no image; write one 'source [target-repository[:tag]]' per line, for example ghcr.io/aquasecurity/trivy-db:2.")),
    sourceCredentials: readSourceConnection(),
    platforms: platforms.length > 0 ? platforms : undefined,
    concurrency: wholeNumberInput('concurrency', 8, 1, 32),
  };
}

/** A Docker Registry connection: its URL names the registry its login is for. */
function readSourceConnection(): ImportInputs['sourceCredentials'] {
  const id = optionalInput('sourceConnection');
  if (!id) return undefined;
  const url = tl.getEndpointUrl(id, true) ?? '';
  const username = tl.getEndpointAuthorizationParameter(id, 'username', true);
  const password = tl.getEndpointAuthorizationParameter(id, 'password', true);
  if (!username || !password) throw new InputError('sourceConnection', 'the connection has no username and password; use a Docker Registry connection with a login for the source registry.');
  tl.setSecret(password);
  let host: string;
  try {
    host = parseRegistryHost(new URL(/^[a-z]+:\/\//i.test(url) ? url : `https://${url}`).host, 'sourceConnection');
  } catch {
    throw new InputError('sourceConnection', `its registry URL '${url}' names no registry; edit the connection's Docker Registry field.`);
  }
  return { host, username, password };
}
