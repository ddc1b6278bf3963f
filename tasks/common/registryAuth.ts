import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import type { RegistryAuth } from '../../src/acr/session.js';
import { readAgentIdentity, readServiceConnectionIdentity } from './azureIdentity.js';

/** `authMode` of the registry tasks: serviceConnection | agentIdentity | registryCredentials. */
export function readRegistryAuth(): RegistryAuth {
  const mode = tl.getInput('authMode', true)!;
  switch (mode) {
    case 'serviceConnection':
      return { kind: 'azure', identity: readServiceConnectionIdentity('azureSubscription') };
    case 'agentIdentity':
      return { kind: 'azure', identity: readAgentIdentity() };
    case 'registryCredentials': {
      const id = tl.getInput('dockerRegistryServiceConnection', true)!;
      const username = tl.getEndpointAuthorizationParameter(id, 'username', true);
      const password = tl.getEndpointAuthorizationParameter(id, 'password', true);
      if (!username || !password) {
        throw new InputError('dockerRegistryServiceConnection', 'the connection has no username and password; use a Docker Registry connection of type "Others" with the ACR admin user or a repository-scoped token.');
      }
      tl.setSecret(password);
      return { kind: 'basic', username, password };
    }
    default:
      throw new InputError('authMode', `'${mode}' is not one of serviceConnection, agentIdentity, registryCredentials.`);
  }
}
