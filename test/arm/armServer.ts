// Azure Resource Manager stand-in for the operations PrivateLinkGuard (and later the deploy task)
// calls: GET and PATCH of a container registry, its private endpoint connections and replications,
// GET of a managed cluster, GET and PATCH of a storage account and its private endpoint
// connections, GET of a Microsoft.Network private endpoint. Wire shapes follow the ARM REST
// reference (Microsoft.ContainerRegistry 2025-11-01, Microsoft.ContainerService 2026-04-01,
// Microsoft.Storage 2025-08-01, Microsoft.Network 2024-05-01) and the ARM RPC rules: bearer tokens
// from Entra for the management audience, RBAC before existence (403 hides whether a resource
// exists), ARM's error envelope `{"error":{"code","message"}}`, and the long-running-operation
// protocol of a registry PATCH (201 + Azure-AsyncOperation polled to `Succeeded`, or 202 +
// Location polled until it stops answering 202); a storage account PATCH answers 200 at once.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../env/ca.js';
import { startEntra, type EntraStandIn } from '../env/entra.js';
import { bearerToken, readBody, requestUrl, sendJson, startServer, type RunningServer } from '../env/http.js';

/** The management audience of the public cloud, what `activeDirectoryServiceEndpointResourceId` holds there. */
export const ARM_AUDIENCE = 'https://management.core.windows.net/';

export type ArmRole = 'Reader' | 'Contributor';
export type LroStyle = 'azure-async-operation' | 'location';
export type Json = Record<string, unknown>;

/** The wire `properties` of a registry; what tests override. */
export interface RegistryProperties {
  publicNetworkAccess?: 'Enabled' | 'Disabled';
  networkRuleSet?: { defaultAction: 'Allow' | 'Deny'; ipRules?: { action: 'Allow'; value: string }[] };
  adminUserEnabled?: boolean;
  anonymousPullEnabled?: boolean;
  dataEndpointEnabled?: boolean;
  networkRuleBypassOptions?: 'AzureServices' | 'None';
  /** Only `exportPolicy` matters to the guard; the others are filled in like ARM does. */
  policies?: { exportPolicy?: { status: 'enabled' | 'disabled' } };
}

/** The wire `properties` of a managed cluster that the guard reads. */
export interface ClusterProperties {
  apiServerAccessProfile?: { enablePrivateCluster?: boolean; enableVnetIntegration?: boolean; authorizedIPRanges?: string[] };
  disableLocalAccounts?: boolean;
  aadProfile?: { managed?: boolean; enableAzureRBAC?: boolean };
  networkProfile?: { networkPlugin?: string; networkPolicy?: string };
}

/** The wire `properties` of a storage account that tests override; `undefined` leaves a setting out, as ARM does for accounts that never set it. */
export interface StorageAccountProperties {
  publicNetworkAccess?: 'Enabled' | 'Disabled' | 'SecuredByPerimeter';
  networkAcls?: {
    bypass?: string;
    defaultAction: 'Allow' | 'Deny';
    ipRules?: { value: string; action: 'Allow' }[];
    virtualNetworkRules?: { id: string; action: 'Allow'; state?: string }[];
    resourceAccessRules?: { tenantId: string; resourceId: string }[];
  };
  allowBlobPublicAccess?: boolean;
  allowSharedKeyAccess?: boolean;
  minimumTlsVersion?: 'TLS1_0' | 'TLS1_1' | 'TLS1_2';
}

export type ConnectionStatus = 'Approved' | 'Pending' | 'Rejected' | 'Disconnected';

export interface ArmRequest {
  method: string;
  path: string;
  apiVersion?: string;
  /** The parsed JSON body of a PATCH. */
  body?: Json;
  status: number;
}

export interface StartArmOptions {
  ca: TestCa;
  entra: EntraStandIn;
  /** Default: a random GUID. */
  subscriptionId?: string;
  /** Default `westeurope`. */
  location?: string;
}

export interface ArmStandIn {
  /** `https://127.0.0.1:<port>/`, as an AzureRM connection's URL carries it. */
  url: string;
  subscriptionId: string;
  /** Tokens are accepted for this audience and for `url` itself, as ARM accepts both of its names. */
  audience: string;
  /** How PATCH answers. Default `azure-async-operation`. */
  lroStyle: LroStyle;
  /** Status polls that answer "in progress" before an update completes. Default 1. */
  pollsBeforeDone: number;
  requests: ArmRequest[];
  /** A registry with a private posture unless `properties` says otherwise; returns its wire resource. */
  addRegistry(resourceGroup: string, name: string, properties?: RegistryProperties): Json;
  addPrivateEndpointConnection(resourceGroup: string, registry: string, name: string, status: ConnectionStatus): void;
  /** A geo-replica of a Premium registry; the home region's replica exists from the start. */
  addReplication(resourceGroup: string, registry: string, location: string): void;
  /** A StorageV2 account with a private posture unless `properties` says otherwise; returns its wire resource. */
  addStorageAccount(resourceGroup: string, name: string, properties?: StorageAccountProperties): Json;
  /**
   * A Microsoft.Network private endpoint (in the account's resource group) to the account's
   * `groupId` sub-resource, and the account's side of the connection, named `<endpoint>.<guid>` as
   * the storage service names them. `endpointReadable` false leaves the endpoint resource out, as
   * when it lives where the caller may not read.
   */
  addStoragePrivateEndpoint(resourceGroup: string, account: string, endpointName: string, groupId: string, status: ConnectionStatus, endpointReadable?: boolean): void;
  /** The account's wire resource as ARM would return it now. */
  storageAccount(resourceGroup: string, name: string): Json | undefined;
  /** A private, Entra-only, Calico-policed cluster unless `properties` says otherwise. */
  addCluster(resourceGroup: string, name: string, properties?: ClusterProperties): Json;
  /** The registry's wire resource as ARM would return it now. */
  registry(resourceGroup: string, name: string): Json | undefined;
  /** Role of a principal (by object id) on the whole subscription. */
  grant(objectId: string, role: ArmRole): void;
  stop(): Promise<void>;
}

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: http.OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

interface StoredRegistry {
  resource: Json;
  connections: Json[];
  /** Replica locations, the home region first. */
  replicaLocations: string[];
}

interface StoredStorageAccount {
  resource: Json;
  connections: Json[];
}

interface PendingOperation {
  resourceGroup: string;
  registry: string;
  patch: Json;
  pollsLeft: number;
  applied: boolean;
}

const REGISTRY_TYPE = 'Microsoft.ContainerRegistry/registries';
const CLUSTER_TYPE = 'Microsoft.ContainerService/managedClusters';
const STORAGE_TYPE = 'Microsoft.Storage/storageAccounts';
const PRIVATE_ENDPOINT_TYPE = 'Microsoft.Network/privateEndpoints';
/** Properties a storage account PATCH may carry (StorageAccountPropertiesUpdateParameters). */
const UPDATABLE_STORAGE_PROPERTIES = new Set([
  'customDomain', 'encryption', 'sasPolicy', 'keyPolicy', 'accessTier', 'azureFilesIdentityBasedAuthentication', 'supportsHttpsTrafficOnly',
  'isSftpEnabled', 'isLocalUserEnabled', 'enableExtendedGroups', 'networkAcls', 'largeFileSharesState', 'routingPreference',
  'dualStackEndpointPreference', 'allowBlobPublicAccess', 'minimumTlsVersion', 'allowSharedKeyAccess', 'allowCrossTenantReplication',
  'defaultToOAuthAuthentication', 'publicNetworkAccess', 'immutableStorageWithVersioning', 'allowedCopyScope', 'dnsEndpointType',
]);
/** The storage service refuses TLS1_3 as a minimum ("Minimum TLS version 1.3 version is not supported"). */
const SETTABLE_TLS_VERSIONS = new Set(['TLS1_0', 'TLS1_1', 'TLS1_2']);
/** Properties a registry PATCH may carry (RegistryPropertiesUpdateParameters). */
const UPDATABLE_REGISTRY_PROPERTIES = new Set([
  'adminUserEnabled', 'networkRuleSet', 'policies', 'encryption', 'dataEndpointEnabled', 'publicNetworkAccess',
  'networkRuleBypassOptions', 'networkRuleBypassAllowedForTasks', 'anonymousPullEnabled', 'roleAssignmentMode',
]);

export async function startArm(options: StartArmOptions): Promise<ArmStandIn> {
  const subscriptionId = options.subscriptionId ?? randomUUID();
  const location = options.location ?? 'westeurope';
  const resourceGroups = new Set<string>();
  const registries = new Map<string, StoredRegistry>();
  const clusters = new Map<string, Json>();
  const storageAccounts = new Map<string, StoredStorageAccount>();
  const privateEndpoints = new Map<string, Json>();
  const roles = new Map<string, ArmRole>();
  const operations = new Map<string, PendingOperation>();
  const tls = await options.ca.issue(`arm-${randomUUID()}`, ['127.0.0.1', 'localhost']);
  const key = (resourceGroup: string, name: string) => `${resourceGroup}/${name}`.toLowerCase();
  const resourceId = (resourceGroup: string, type: string, name: string) => `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${type}/${name}`;

  /** One per replica region while dedicated data endpoints are on; ARM lists none otherwise. */
  function dataEndpointHostNames(name: string, enabled: boolean, replicaLocations: string[]): string[] {
    return enabled ? replicaLocations.map((region) => `${name.toLowerCase()}.${region}.data.azurecr.io`) : [];
  }

  /** Applies an update the way ACR does once its operation completes. */
  function applyRegistryPatch(stored: StoredRegistry, patch: Json): void {
    const properties = stored.resource.properties as Json;
    const changes = (patch.properties ?? {}) as Json;
    for (const [name, value] of Object.entries(changes)) {
      properties[name] = name === 'policies' ? { ...(properties.policies as Json), ...(value as Json) } : value;
    }
    properties.dataEndpointHostNames = dataEndpointHostNames(stored.resource.name as string, properties.dataEndpointEnabled === true, stored.replicaLocations);
    if (patch.tags) stored.resource.tags = patch.tags;
  }

  function validateRegistryPatch(patch: Json): void {
    const unknown = Object.keys((patch.properties ?? {}) as Json).filter((name) => !UPDATABLE_REGISTRY_PROPERTIES.has(name));
    if (unknown.length) throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: could not find member '${unknown[0]}' on object of type 'RegistryPropertiesUpdateParameters'.`);
    const ruleSet = (patch.properties as Json | undefined)?.networkRuleSet as Json | undefined;
    if (ruleSet && ruleSet.defaultAction !== 'Allow' && ruleSet.defaultAction !== 'Deny') {
      throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid: defaultAction '${String(ruleSet.defaultAction)}' is not Allow or Deny.`);
    }
  }

  function validateStoragePatch(patch: Json): void {
    const properties = (patch.properties ?? {}) as Json;
    const unknown = Object.keys(properties).filter((name) => !UPDATABLE_STORAGE_PROPERTIES.has(name));
    if (unknown.length) throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: could not find member '${unknown[0]}' on object of type 'StorageAccountPropertiesUpdateParameters'.`);
    const acls = properties.networkAcls as Json | undefined;
    if (acls && acls.defaultAction !== 'Allow' && acls.defaultAction !== 'Deny') {
      throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid: networkAcls.defaultAction '${String(acls.defaultAction)}' is not Allow or Deny.`);
    }
    const tls = properties.minimumTlsVersion;
    if (tls !== undefined && (typeof tls !== 'string' || !SETTABLE_TLS_VERSIONS.has(tls))) {
      throw new ArmError(400, 'InvalidValuesForRequestParameters', `Values for request parameters are invalid: minimumTlsVersion ${JSON.stringify(tls)}.`);
    }
  }

  /** 401 unless a valid token for the management audience came with the request; returns the caller's object id. */
  function authenticate(req: http.IncomingMessage): string {
    const token = bearerToken(req);
    const challenge = { 'WWW-Authenticate': `Bearer authorization_uri="${options.entra.authorityUrl}${options.entra.tenantId}", error="invalid_token"` };
    if (!token) throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", challenge);
    let claims;
    try {
      claims = options.entra.verifyAccessToken(token);
    } catch (error) {
      throw new ArmError(401, 'InvalidAuthenticationToken', `The access token is invalid. (${String(error)})`, challenge);
    }
    const audiences = [standIn.audience, standIn.url];
    if (!audiences.includes(String(claims.aud))) {
      throw new ArmError(401, 'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${String(claims.aud)}'. It should exactly match with one of the allowed audiences ${audiences.map((audience) => `'${audience}'`).join(',')}.`, challenge);
    }
    return String(claims.oid);
  }

  /** ARM checks RBAC on the requested scope before it looks the resource up. */
  function authorize(objectId: string, action: string, scope: string, write: boolean): void {
    const role = roles.get(objectId);
    if (role === 'Contributor' || (role === 'Reader' && !write)) return;
    throw new ArmError(403, 'AuthorizationFailed',
      `The client '${objectId}' with object id '${objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`);
  }

  function findResourceGroup(resourceGroup: string): void {
    if (![...resourceGroups].some((known) => known.toLowerCase() === resourceGroup.toLowerCase())) {
      throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${resourceGroup}' could not be found.`);
    }
  }

  function notFound(type: string, name: string, resourceGroup: string): ArmError {
    return new ArmError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
  }

  function findRegistry(resourceGroup: string, name: string): StoredRegistry {
    findResourceGroup(resourceGroup);
    const stored = registries.get(key(resourceGroup, name));
    if (!stored) throw notFound(REGISTRY_TYPE, name, resourceGroup);
    return stored;
  }

  function findStorageAccount(resourceGroup: string, name: string): StoredStorageAccount {
    findResourceGroup(resourceGroup);
    const stored = storageAccounts.get(key(resourceGroup, name));
    if (!stored) throw notFound(STORAGE_TYPE, name, resourceGroup);
    return stored;
  }

  function startUpdate(resourceGroup: string, name: string, stored: StoredRegistry, patch: Json, apiVersion: string, res: http.ServerResponse): number {
    const operationId = `registries-${randomUUID()}`;
    operations.set(operationId, { resourceGroup, registry: name, patch, pollsLeft: standIn.pollsBeforeDone, applied: false });
    (stored.resource.properties as Json).provisioningState = 'Updating';
    const base = `${standIn.url.replace(/\/$/, '')}${resourceId(resourceGroup, REGISTRY_TYPE, name)}`;
    if (standIn.lroStyle === 'location') {
      sendJson(res, 202, {}, { Location: `${base}/operationResults/${operationId}?api-version=${apiVersion}`, 'Retry-After': '1' });
      return 202;
    }
    sendJson(res, 201, stored.resource, { 'Azure-AsyncOperation': `${base}/operationStatuses/${operationId}?api-version=${apiVersion}`, 'Retry-After': '1' });
    return 201;
  }

  /** One poll of an update; true once it has completed (and the change is applied). */
  function pollOperation(operationId: string): { done: boolean; stored: StoredRegistry } {
    const operation = operations.get(operationId);
    if (!operation) throw new ArmError(404, 'OperationNotFound', `The operation '${operationId}' was not found.`);
    const stored = findRegistry(operation.resourceGroup, operation.registry);
    if (operation.pollsLeft > 0) {
      operation.pollsLeft--;
      return { done: false, stored };
    }
    if (!operation.applied) {
      applyRegistryPatch(stored, operation.patch);
      (stored.resource.properties as Json).provisioningState = 'Succeeded';
      operation.applied = true;
    }
    return { done: true, stored };
  }

  async function route(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<number> {
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    const objectId = authenticate(req);
    const match = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+\/[^/]+)\/([^/]+)(\/.*)?$/i.exec(url.pathname);
    if (!match) throw new ArmError(404, 'InvalidResourceType', `The resource type could not be found for ${url.pathname}.`);
    const [, subscription, resourceGroup, type, name, rest = ''] = match as unknown as [string, string, string, string, string, string?];
    if (subscription.toLowerCase() !== subscriptionId.toLowerCase()) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${subscription}' could not be found.`);
    const scope = resourceId(resourceGroup, type, name);

    if (type.toLowerCase() === REGISTRY_TYPE.toLowerCase()) {
      if (req.method === 'GET' && rest === '') {
        authorize(objectId, `${REGISTRY_TYPE}/read`, scope, false);
        sendJson(res, 200, findRegistry(resourceGroup, name).resource);
        return 200;
      }
      if (req.method === 'PATCH' && rest === '') {
        authorize(objectId, `${REGISTRY_TYPE}/write`, scope, true);
        const stored = findRegistry(resourceGroup, name);
        const patch = JSON.parse(await readBody(req)) as Json;
        standIn.requests.at(-1)!.body = patch;
        validateRegistryPatch(patch);
        return startUpdate(resourceGroup, name, stored, patch, apiVersion, res);
      }
      if (req.method === 'GET' && /^\/privateEndpointConnections$/i.test(rest)) {
        authorize(objectId, `${REGISTRY_TYPE}/privateEndpointConnections/read`, scope, false);
        sendJson(res, 200, { value: findRegistry(resourceGroup, name).connections });
        return 200;
      }
      if (req.method === 'GET' && /^\/replications$/i.test(rest)) {
        authorize(objectId, `${REGISTRY_TYPE}/replications/read`, scope, false);
        const stored = findRegistry(resourceGroup, name);
        sendJson(res, 200, { value: stored.replicaLocations.map((region) => replicationResource(stored, region)) });
        return 200;
      }
      const status = /^\/operationStatuses\/([^/]+)$/i.exec(rest);
      if (req.method === 'GET' && status) {
        const { done } = pollOperation(status[1]);
        sendJson(res, 200, { id: `${scope}/operationStatuses/${status[1]}`, name: status[1], status: done ? 'Succeeded' : 'InProgress' }, done ? {} : { 'Retry-After': '1' });
        return 200;
      }
      const result = /^\/operationResults\/([^/]+)$/i.exec(rest);
      if (req.method === 'GET' && result) {
        const { done, stored } = pollOperation(result[1]);
        if (!done) {
          sendJson(res, 202, {}, { Location: `${standIn.url.replace(/\/$/, '')}${url.pathname}${url.search}`, 'Retry-After': '1' });
          return 202;
        }
        sendJson(res, 200, stored.resource);
        return 200;
      }
    }
    if (type.toLowerCase() === CLUSTER_TYPE.toLowerCase() && req.method === 'GET' && rest === '') {
      authorize(objectId, `${CLUSTER_TYPE}/read`, scope, false);
      findResourceGroup(resourceGroup);
      const cluster = clusters.get(key(resourceGroup, name));
      if (!cluster) throw notFound(CLUSTER_TYPE, name, resourceGroup);
      sendJson(res, 200, cluster);
      return 200;
    }
    if (type.toLowerCase() === STORAGE_TYPE.toLowerCase()) {
      if (req.method === 'GET' && rest === '') {
        authorize(objectId, `${STORAGE_TYPE}/read`, scope, false);
        sendJson(res, 200, findStorageAccount(resourceGroup, name).resource);
        return 200;
      }
      if (req.method === 'PATCH' && rest === '') {
        authorize(objectId, `${STORAGE_TYPE}/write`, scope, true);
        const stored = findStorageAccount(resourceGroup, name);
        const patch = JSON.parse(await readBody(req)) as Json;
        standIn.requests.at(-1)!.body = patch;
        validateStoragePatch(patch);
        // Each property given replaces the stored one whole (networkAcls included); the update is synchronous.
        Object.assign(stored.resource.properties as Json, (patch.properties ?? {}) as Json);
        if (patch.tags) stored.resource.tags = patch.tags;
        sendJson(res, 200, stored.resource);
        return 200;
      }
      if (req.method === 'GET' && /^\/privateEndpointConnections$/i.test(rest)) {
        authorize(objectId, `${STORAGE_TYPE}/privateEndpointConnections/read`, scope, false);
        sendJson(res, 200, { value: findStorageAccount(resourceGroup, name).connections });
        return 200;
      }
    }
    if (type.toLowerCase() === PRIVATE_ENDPOINT_TYPE.toLowerCase() && req.method === 'GET' && rest === '') {
      authorize(objectId, `${PRIVATE_ENDPOINT_TYPE}/read`, scope, false);
      findResourceGroup(resourceGroup);
      const endpoint = privateEndpoints.get(key(resourceGroup, name));
      if (!endpoint) throw notFound(PRIVATE_ENDPOINT_TYPE, name, resourceGroup);
      sendJson(res, 200, endpoint);
      return 200;
    }
    throw new ArmError(405, 'MethodNotAllowed', `The stand-in does not serve ${req.method} ${url.pathname}.`);
  }

  function replicationResource(stored: StoredRegistry, region: string): Json {
    return {
      id: `${stored.resource.id as string}/replications/${region}`,
      name: region,
      type: `${REGISTRY_TYPE}/replications`,
      location: region,
      tags: {},
      properties: {
        provisioningState: 'Succeeded',
        status: { displayStatus: 'Ready', timestamp: new Date().toISOString() },
        regionEndpointEnabled: true,
        zoneRedundancy: 'Disabled',
      },
    };
  }

  const server: RunningServer = await startServer(async (req, res) => {
    const url = requestUrl(req);
    const record: ArmRequest = { method: req.method ?? '', path: url.pathname, apiVersion: url.searchParams.get('api-version') ?? undefined, status: 0 };
    standIn.requests.push(record);
    try {
      record.status = await route(req, res, url);
    } catch (error) {
      if (!(error instanceof ArmError)) throw error;
      record.status = error.status;
      sendJson(res, error.status, { error: { code: error.code, message: error.message } }, error.headers);
    }
  }, tls);

  const standIn: ArmStandIn = {
    url: `${server.url}/`,
    subscriptionId,
    audience: ARM_AUDIENCE,
    lroStyle: 'azure-async-operation',
    pollsBeforeDone: 1,
    requests: [],
    addRegistry: (resourceGroup, name, properties = {}) => {
      resourceGroups.add(resourceGroup);
      const dataEndpointEnabled = properties.dataEndpointEnabled ?? true;
      const replicaLocations = [location];
      const resource: Json = {
        id: resourceId(resourceGroup, REGISTRY_TYPE, name),
        name,
        type: REGISTRY_TYPE,
        location,
        tags: {},
        sku: { name: 'Premium', tier: 'Premium' },
        properties: {
          loginServer: `${name.toLowerCase()}.azurecr.io`,
          creationDate: new Date().toISOString(),
          provisioningState: 'Succeeded',
          adminUserEnabled: false,
          networkRuleSet: { defaultAction: 'Deny', ipRules: [] },
          policies: {
            quarantinePolicy: { status: 'disabled' },
            trustPolicy: { type: 'Notary', status: 'disabled' },
            retentionPolicy: { days: 7, status: 'disabled' },
            exportPolicy: { status: 'disabled' },
            azureADAuthenticationAsArmPolicy: { status: 'enabled' },
          },
          encryption: { status: 'disabled' },
          dataEndpointEnabled,
          dataEndpointHostNames: dataEndpointHostNames(name, dataEndpointEnabled, replicaLocations),
          privateEndpointConnections: [],
          publicNetworkAccess: 'Disabled',
          networkRuleBypassOptions: 'AzureServices',
          zoneRedundancy: 'Disabled',
          anonymousPullEnabled: false,
          ...properties,
        },
      };
      registries.set(key(resourceGroup, name), { resource, connections: [], replicaLocations });
      return resource;
    },
    addPrivateEndpointConnection: (resourceGroup, registry, name, status) => {
      const stored = findRegistry(resourceGroup, registry);
      const connection = {
        id: `${stored.resource.id as string}/privateEndpointConnections/${name}`,
        name,
        type: `${REGISTRY_TYPE}/privateEndpointConnections`,
        properties: {
          privateEndpoint: { id: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/privateEndpoints/${name}` },
          privateLinkServiceConnectionState: { status, description: status === 'Approved' ? 'Auto-Approved' : '', actionsRequired: 'None' },
          provisioningState: 'Succeeded',
        },
      };
      stored.connections.push(connection);
      // The registry resource embeds the same connections.
      ((stored.resource.properties as Json).privateEndpointConnections as Json[]).push(connection);
    },
    addReplication: (resourceGroup, registry, region) => {
      const stored = findRegistry(resourceGroup, registry);
      stored.replicaLocations.push(region);
      const properties = stored.resource.properties as Json;
      properties.dataEndpointHostNames = dataEndpointHostNames(registry, properties.dataEndpointEnabled === true, stored.replicaLocations);
    },
    addStorageAccount: (resourceGroup, name, properties = {}) => {
      resourceGroups.add(resourceGroup);
      const endpoint = (service: string) => `https://${name}.${service}.core.windows.net/`;
      const resource: Json = {
        id: resourceId(resourceGroup, STORAGE_TYPE, name),
        name,
        type: STORAGE_TYPE,
        location,
        tags: {},
        sku: { name: 'Standard_ZRS', tier: 'Standard' },
        kind: 'StorageV2',
        properties: {
          provisioningState: 'Succeeded',
          creationTime: new Date().toISOString(),
          primaryLocation: location,
          statusOfPrimary: 'available',
          primaryEndpoints: Object.fromEntries(['blob', 'queue', 'table', 'file', 'web', 'dfs'].map((service) => [service, endpoint(service)])),
          accessTier: 'Hot',
          supportsHttpsTrafficOnly: true,
          encryption: { keySource: 'Microsoft.Storage', services: { blob: { enabled: true, keyType: 'Account' }, file: { enabled: true, keyType: 'Account' } } },
          dnsEndpointType: 'Standard',
          isHnsEnabled: false,
          privateEndpointConnections: [],
          publicNetworkAccess: 'Disabled',
          networkAcls: { bypass: 'AzureServices', virtualNetworkRules: [], ipRules: [], defaultAction: 'Deny' },
          allowBlobPublicAccess: false,
          allowSharedKeyAccess: false,
          minimumTlsVersion: 'TLS1_2',
          ...properties,
        },
      };
      storageAccounts.set(key(resourceGroup, name), { resource, connections: [] });
      return resource;
    },
    addStoragePrivateEndpoint: (resourceGroup, account, endpointName, groupId, status, endpointReadable = true) => {
      const stored = findStorageAccount(resourceGroup, account);
      const endpointId = resourceId(resourceGroup, PRIVATE_ENDPOINT_TYPE, endpointName);
      const state = { status, description: status === 'Approved' ? 'Auto-Approved' : '', actionRequired: 'None' };
      const connectionName = `${endpointName}.${randomUUID()}`;
      const connection = {
        id: `${stored.resource.id as string}/privateEndpointConnections/${connectionName}`,
        name: connectionName,
        type: `${STORAGE_TYPE}/privateEndpointConnections`,
        properties: { provisioningState: 'Succeeded', privateEndpoint: { id: endpointId }, privateLinkServiceConnectionState: state },
      };
      stored.connections.push(connection);
      ((stored.resource.properties as Json).privateEndpointConnections as Json[]).push(connection);
      if (!endpointReadable) return;
      resourceGroups.add(resourceGroup);
      const link = {
        name: endpointName,
        id: `${endpointId}/${status === 'Approved' ? 'privateLinkServiceConnections' : 'manualPrivateLinkServiceConnections'}/${endpointName}`,
        type: `${PRIVATE_ENDPOINT_TYPE}/privateLinkServiceConnections`,
        properties: {
          provisioningState: 'Succeeded',
          privateLinkServiceId: stored.resource.id,
          groupIds: [groupId],
          privateLinkServiceConnectionState: { status, description: state.description, actionsRequired: 'None' },
        },
      };
      // Connections that need the owner's approval are made as manual ones and stay there once approved.
      const manual = status !== 'Approved';
      privateEndpoints.set(key(resourceGroup, endpointName), {
        name: endpointName,
        id: endpointId,
        type: PRIVATE_ENDPOINT_TYPE,
        location,
        properties: {
          provisioningState: 'Succeeded',
          resourceGuid: randomUUID(),
          subnet: { id: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/virtualNetworks/vnet-agents/subnets/private-endpoints` },
          networkInterfaces: [{ id: `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/networkInterfaces/${endpointName}.nic` }],
          privateLinkServiceConnections: manual ? [] : [link],
          manualPrivateLinkServiceConnections: manual ? [link] : [],
          customDnsConfigs: [{ fqdn: `${account}.${groupId}.core.windows.net`, ipAddresses: ['10.20.1.5'] }],
        },
      });
    },
    storageAccount: (resourceGroup, name) => storageAccounts.get(key(resourceGroup, name))?.resource,
    addCluster: (resourceGroup, name, properties = {}) => {
      resourceGroups.add(resourceGroup);
      const cluster: Json = {
        id: resourceId(resourceGroup, CLUSTER_TYPE, name),
        name,
        type: 'Microsoft.ContainerService/ManagedClusters',
        location,
        sku: { name: 'Base', tier: 'Standard' },
        properties: {
          provisioningState: 'Succeeded',
          powerState: { code: 'Running' },
          kubernetesVersion: '1.33.2',
          currentKubernetesVersion: '1.33.2',
          dnsPrefix: name,
          privateFQDN: `${name}-dns-1a2b3c4d.privatelink.${location}.azmk8s.io`,
          aadProfile: { managed: true, enableAzureRBAC: true, tenantID: options.entra.tenantId },
          disableLocalAccounts: true,
          apiServerAccessProfile: { enablePrivateCluster: true, privateDNSZone: 'system', enablePrivateClusterPublicFQDN: false },
          networkProfile: { networkPlugin: 'azure', networkPolicy: 'calico', serviceCidr: '10.0.0.0/16', dnsServiceIP: '10.0.0.10' },
          ...properties,
        },
      };
      clusters.set(key(resourceGroup, name), cluster);
      return cluster;
    },
    registry: (resourceGroup, name) => registries.get(key(resourceGroup, name))?.resource,
    grant: (objectId, role) => {
      roles.set(objectId, role);
    },
    stop: () => server.stop(),
  };
  return standIn;
}

export interface ArmEnvironment {
  ca: TestCa;
  entra: EntraStandIn;
  arm: ArmStandIn;
  stop(): Promise<void>;
}

/** A test CA, the Entra stand-in and the ARM stand-in trusting it, in a temp folder stop() removes. */
export async function startArmEnvironment(): Promise<ArmEnvironment> {
  const dir = await mkdtemp(join(tmpdir(), 'arm-env-'));
  const ca = await createTestCa(join(dir, 'ca'));
  const entra = await startEntra({ ca });
  const arm = await startArm({ ca, entra });
  return {
    ca,
    entra,
    arm,
    stop: async () => {
      await Promise.all([arm.stop(), entra.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
