import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { GUARD_MODES, PUBLIC_CLOUD_STORAGE_SUFFIX, type GuardMode } from '../../src/guard/privateLinkGuard.js';
import { readArmConnection, type ArmConnection } from '../common/armConnection.js';

/** The task.json inputs of PrivateLinkGuard@1, validated. Names match task.json exactly. */
export interface GuardInputs extends ArmConnection {
  resourceGroup: string;
  registryName?: string;
  clusterName?: string;
  storageAccountName?: string;
  storageResourceGroup: string;
  /** Not an input: the cloud's storage DNS suffix, from the service connection. */
  storageEndpointSuffix: string;
  mode: GuardMode;
  dnsCheck: boolean;
}

// ARM's naming rules (Microsoft.Resources, Microsoft.ContainerRegistry, Microsoft.ContainerService).
const RESOURCE_GROUP = /^[-\w.()]{0,89}[-\w()]$/u;
const REGISTRY_NAME = /^[a-zA-Z0-9]{5,50}$/;
const CLUSTER_NAME = /^[a-zA-Z0-9](?:[-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$/;
const STORAGE_ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const RESOURCE_GROUP_RULE = 'a resource group name is 1-90 letters, digits, ".", "_", "-", "(" or ")" and does not end with "."';

/**
 * Storage DNS suffixes of the clouds an AzureRM connection's `environment` names, for connections
 * whose data carry no `storageEndpointSuffix` (the values Azure PowerShell and the Azure SDKs use).
 */
const STORAGE_SUFFIX_BY_ENVIRONMENT: Record<string, string> = {
  azurecloud: PUBLIC_CLOUD_STORAGE_SUFFIX,
  azurechinacloud: 'core.chinacloudapi.cn',
  azureusgovernment: 'core.usgovcloudapi.net',
  azuregermancloud: 'core.cloudapi.de',
};
const DNS_SUFFIX = /^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export function readInputs(): GuardInputs {
  const mode = tl.getInput('mode', true)! as GuardMode;
  if (!GUARD_MODES.includes(mode)) throw new InputError('mode', `'${mode}' is not one of ${GUARD_MODES.join(', ')}.`);
  const resourceGroup = readName('resourceGroup', RESOURCE_GROUP, RESOURCE_GROUP_RULE, true)!;
  return {
    ...readArmConnection('azureSubscription'),
    resourceGroup,
    registryName: readName('registryName', REGISTRY_NAME, 'a registry name is 5-50 letters and digits (the resource name, not the login server)'),
    clusterName: readName('clusterName', CLUSTER_NAME, 'a cluster name is 1-63 letters, digits, "-" or "_", starting and ending with a letter or digit'),
    storageAccountName: readName('storageAccountName', STORAGE_ACCOUNT_NAME, 'a storage account name is 3-24 lowercase letters and digits (the account name, not its blob URL)'),
    storageResourceGroup: readName('storageResourceGroup', RESOURCE_GROUP, RESOURCE_GROUP_RULE) ?? resourceGroup,
    storageEndpointSuffix: readStorageSuffix('azureSubscription'),
    mode,
    dnsCheck: tl.getBoolInput('dnsCheck', false),
  };
}

function readName(input: string, pattern: RegExp, rule: string, required = false): string | undefined {
  const value = tl.getInput(input, required)?.trim();
  if (!value) return undefined;
  if (!pattern.test(value)) throw new InputError(input, `'${value}' is not valid: ${rule}.`);
  return value;
}

/**
 * The connection's `storageEndpointSuffix` (some sources write it with a leading dot), else the
 * suffix of the cloud its `environment` names, else the public cloud's.
 */
function readStorageSuffix(input: string): string {
  const id = tl.getInput(input, true)!;
  const given = tl.getEndpointDataParameter(id, 'storageEndpointSuffix', true)?.trim().replace(/^\./, '').toLowerCase();
  if (given) {
    if (!DNS_SUFFIX.test(given)) throw new InputError(input, `the service connection's storageEndpointSuffix '${given}' is not a DNS suffix such as core.windows.net; correct the connection.`);
    return given;
  }
  const environment = tl.getEndpointDataParameter(id, 'environment', true)?.toLowerCase() ?? '';
  return STORAGE_SUFFIX_BY_ENVIRONMENT[environment] ?? PUBLIC_CLOUD_STORAGE_SUFFIX;
}
