import * as tl from 'azure-pipelines-task-lib/task.js';
import type { ArmEndpoint } from '../../src/azure/armPipeline.js';
import type { AzureIdentity } from '../../src/azure/entra.js';
import { InputError } from '../../src/errors.js';
import { readServiceConnectionIdentity } from './azureIdentity.js';

const PUBLIC_CLOUD_ARM = 'https://management.azure.com/';

export interface ArmConnection {
  identity: AzureIdentity;
  arm: ArmEndpoint;
}

/**
 * An AzureRM service connection as ARM sees it: ARM is the connection's URL and the token audience
 * its `activeDirectoryServiceEndpointResourceId`, so sovereign clouds and Azure Stack work and no
 * host the connection does not name is contacted.
 */
export function readArmConnection(input: string): ArmConnection {
  const id = tl.getInput(input, true)!;
  const url = tl.getEndpointUrl(id, true) || PUBLIC_CLOUD_ARM;
  const subscriptionId = tl.getEndpointDataParameter(id, 'subscriptionId', true);
  if (!subscriptionId) throw new InputError(input, 'the service connection names no subscription; use a connection with the Subscription scope level.');
  const audience = tl.getEndpointDataParameter(id, 'activeDirectoryServiceEndpointResourceId', true) || `${new URL(url).origin}/`;
  return { identity: readServiceConnectionIdentity(input), arm: { url, subscriptionId, audience } };
}
