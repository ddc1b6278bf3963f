import * as tl from 'azure-pipelines-task-lib/task.js';
import { InputError } from '../../src/errors.js';
import { GUARD_MODES, type GuardMode } from '../../src/guard/privateLinkGuard.js';
import { readArmConnection, type ArmConnection } from '../common/armConnection.js';

/** The task.json inputs of PrivateLinkGuard@1, validated. Names match task.json exactly. */
export interface GuardInputs extends ArmConnection {
  resourceGroup: string;
  registryName?: string;
  clusterName?: string;
  mode: GuardMode;
  dnsCheck: boolean;
}

// ARM's naming rules (Microsoft.Resources, Microsoft.ContainerRegistry, Microsoft.ContainerService).
const RESOURCE_GROUP = /^[-\w.()]{0,89}[-\w()]$/u;
const REGISTRY_NAME = /^[a-zA-Z0-9]{5,50}$/;
const CLUSTER_NAME = /^[a-zA-Z0-9](?:[-_a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$/;

export function readInputs(): GuardInputs {
  const mode = tl.getInput('mode', true)! as GuardMode;
  if (!GUARD_MODES.includes(mode)) throw new InputError('mode', `'${mode}' is not one of ${GUARD_MODES.join(', ')}.`);
  return {
    ...readArmConnection('azureSubscription'),
    resourceGroup: readName('resourceGroup', RESOURCE_GROUP, 'a resource group name is 1-90 letters, digits, ".", "_", "-", "(" or ")" and does not end with "."', true)!,
    registryName: readName('registryName', REGISTRY_NAME, 'a registry name is 5-50 letters and digits (the resource name, not the login server)'),
    clusterName: readName('clusterName', CLUSTER_NAME, 'a cluster name is 1-63 letters, digits, "-" or "_", starting and ending with a letter or digit'),
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
