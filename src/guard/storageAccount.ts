// The Terraform state account in ARM, through @azure/arm-storage's modular API (only the operations
// called here reach the bundle, not the whole management client), sent over the same pipeline as
// the other ARM clients: our credential, our HttpTransport, the connection's endpoint.
import type { StorageManagementContext } from '@azure/arm-storage/api';
import { list as listPrivateEndpointConnections } from '@azure/arm-storage/api/privateEndpointConnections';
import { getProperties, update } from '@azure/arm-storage/api/storageAccounts';
import type { PrivateEndpointConnection, StorageAccount, StorageAccountUpdateParameters } from '@azure/arm-storage/models';
import { describeArmError } from '../azure/armPipeline.js';
import type { ResourceRef } from './checks.js';
import type { StorageEndpointConnection } from './storageChecks.js';

/** Microsoft.Network's API version for reading a private endpoint (stable, lists `groupIds`). */
const NETWORK_API_VERSION = '2024-05-01';

export interface StorageState {
  ref: ResourceRef;
  account: StorageAccount;
  connections: StorageEndpointConnection[];
}

export async function readStorageAccount(context: StorageManagementContext, ref: ResourceRef): Promise<StorageState> {
  const read = { action: `read storage account '${ref.name}' in resource group '${ref.resourceGroup}'`, permission: 'the Reader role on the storage account or its resource group' };
  try {
    const account = await getProperties(context, ref.resourceGroup, ref.name);
    const connections: PrivateEndpointConnection[] = [];
    for await (const connection of listPrivateEndpointConnections(context, ref.resourceGroup, ref.name)) connections.push(connection);
    return { ref, account, connections: await Promise.all(connections.map((connection) => describeConnection(context, account.id, connection))) };
  } catch (error) {
    throw describeArmError(error, read);
  }
}

/** The parts of a Microsoft.Network private endpoint (ARM REST reference, PrivateEndpoints_Get) read here. */
interface PrivateEndpointResource {
  properties?: {
    privateLinkServiceConnections?: PrivateLinkServiceConnection[];
    /** Connections that waited for approval land here instead. */
    manualPrivateLinkServiceConnections?: PrivateLinkServiceConnection[];
  };
  error?: { code?: string };
}

interface PrivateLinkServiceConnection {
  properties?: { privateLinkServiceId?: string; groupIds?: string[] };
}

/**
 * Adds the sub-resources to a connection. The storage side of a connection does not say which
 * service it reaches, so the private endpoint itself is read (it may live in another resource
 * group or subscription; without read access there, the sub-resource stays unknown).
 */
async function describeConnection(context: StorageManagementContext, accountId: string | undefined, connection: PrivateEndpointConnection): Promise<StorageEndpointConnection> {
  const described: StorageEndpointConnection = {
    name: connection.name ?? 'unnamed',
    status: connection.privateLinkServiceConnectionState?.status ?? 'unknown',
    privateEndpointId: connection.privateEndpoint?.id,
  };
  if (!described.privateEndpointId) return { ...described, unknownReason: 'the connection names no private endpoint' };
  const response = await context.pathUnchecked(described.privateEndpointId).get({ queryParameters: { 'api-version': NETWORK_API_VERSION } });
  const body = response.body as PrivateEndpointResource | undefined;
  if (response.status !== '200') return { ...described, unknownReason: `the private endpoint could not be read (${body?.error?.code ?? `HTTP ${response.status}`})` };
  const links = [...(body?.properties?.privateLinkServiceConnections ?? []), ...(body?.properties?.manualPrivateLinkServiceConnections ?? [])];
  const toAccount = links.filter((link) => !accountId || link.properties?.privateLinkServiceId?.toLowerCase() === accountId.toLowerCase());
  return { ...described, groupIds: toAccount.flatMap((link) => link.properties?.groupIds ?? []) };
}

/**
 * PATCHes the account; ARM answers 200 with the account (no long-running operation).
 * @azure/arm-storage 20.0.0 leaves `properties` out of the request when the only properties set
 * are among those its "all undefined?" test spells in PascalCase (`NetworkRuleSet`,
 * `AllowBlobPublicAccess`, …), so such an update would silently change nothing; 21.0.0 fixes it
 * but needs Node 22. Giving the two this guard sets under that spelling as well makes the test see
 * them; the serializer reads only the camelCase names, so nothing more goes on the wire.
 */
export async function updateStorageAccount(context: StorageManagementContext, ref: ResourceRef, parameters: StorageAccountUpdateParameters): Promise<StorageAccount> {
  const seenBySdkTest: StorageAccountUpdateParameters & Record<string, unknown> = {
    ...parameters,
    NetworkRuleSet: parameters.networkRuleSet,
    AllowBlobPublicAccess: parameters.allowBlobPublicAccess,
  };
  return update(context, ref.resourceGroup, ref.name, seenBySdkTest).catch((error: unknown) => {
    throw describeArmError(error, {
      action: `update storage account '${ref.name}' in resource group '${ref.resourceGroup}'`,
      permission: 'the Storage Account Contributor role (Microsoft.Storage/storageAccounts/write) on the storage account',
    });
  });
}
