// What `remediate` may change, decided from the failed checks. One rule for the registry and the
// Terraform state account: public access is closed only when an approved private endpoint exists
// (for the account, one for the blob service); otherwise nobody, this pipeline included, could
// reach the resource afterwards. Trusted Azure services keep their way in. Cluster findings are
// never changed.
import type { PrivateEndpointConnection, Registry, RegistryUpdateParameters } from '@azure/arm-containerregistry';
import type { StorageAccount, StorageAccountUpdateParameters } from '@azure/arm-storage/models';
import type { CheckResult } from './checks.js';
import { REGISTRY_CHECK_IDS, approvedConnections } from './registryChecks.js';
import { STORAGE_CHECK_IDS, approvedBlobConnections, type StorageEndpointConnection } from './storageChecks.js';

export interface RemediationPlan<Update> {
  /** The PATCH body; empty when nothing may be changed. */
  update: Update;
  /** One line per setting changed, `setting: old → new`. */
  changes: string[];
  /** Failed checks left alone on purpose, with the reason. */
  refusals: string[];
}

function failedIds(results: CheckResult[]): Set<string> {
  return new Set(results.filter((result) => result.status === 'fail').map((result) => result.id));
}

export function planRegistryRemediation(registry: Registry, connections: PrivateEndpointConnection[], results: CheckResult[]): RemediationPlan<RegistryUpdateParameters> {
  const failed = failedIds(results);
  const plan: RemediationPlan<RegistryUpdateParameters> = { update: {}, changes: [], refusals: [] };

  let closing = false;
  if (failed.has(REGISTRY_CHECK_IDS.publicNetwork)) {
    if (approvedConnections(connections).length > 0) {
      closing = true;
      plan.update.publicNetworkAccess = 'Disabled';
      // The PATCH replaces the whole rule set: keep the IP rules, which no longer apply once public access is off.
      plan.update.networkRuleSet = { defaultAction: 'Deny', ipRules: registry.networkRuleSet?.ipRules ?? [] };
      plan.changes.push(`publicNetworkAccess: ${registry.publicNetworkAccess ?? 'Enabled'} → Disabled`);
      plan.changes.push(`networkRuleSet.defaultAction: ${registry.networkRuleSet?.defaultAction ?? 'Allow'} → Deny`);
    } else {
      plan.refusals.push(
        `${REGISTRY_CHECK_IDS.publicNetwork}: public access stays open because the registry has no approved private endpoint connection; denying it now would lock every client out, this pipeline included. Create and approve a private endpoint first (see ${REGISTRY_CHECK_IDS.privateEndpoint}).`,
      );
    }
  }
  // Defender's image scanning reaches a closed registry only as a trusted service, so the bypass is
  // turned on where it is off (also when this very update closes the registry) and never turned off.
  if (failed.has(REGISTRY_CHECK_IDS.trustedServices) || (closing && registry.networkRuleBypassOptions === 'None')) {
    plan.update.networkRuleBypassOptions = 'AzureServices';
    plan.changes.push('networkRuleBypassOptions: None → AzureServices');
  }
  if (failed.has(REGISTRY_CHECK_IDS.adminUser)) {
    plan.update.adminUserEnabled = false;
    plan.changes.push('adminUserEnabled: true → false');
  }
  if (failed.has(REGISTRY_CHECK_IDS.anonymousPull)) {
    plan.update.anonymousPullEnabled = false;
    plan.changes.push('anonymousPullEnabled: true → false');
  }
  return plan;
}

export function planStorageRemediation(account: StorageAccount, connections: StorageEndpointConnection[], results: CheckResult[]): RemediationPlan<StorageAccountUpdateParameters> {
  const failed = failedIds(results);
  const plan: RemediationPlan<StorageAccountUpdateParameters> = { update: {}, changes: [], refusals: [] };

  const opening = [STORAGE_CHECK_IDS.publicNetwork, STORAGE_CHECK_IDS.defaultAction].filter((id) => failed.has(id));
  if (opening.length && approvedBlobConnections(connections).length === 0) {
    plan.refusals.push(
      `${opening.join(', ')}: public access stays open because the storage account has no approved private endpoint for the blob service; closing it now would cut off Terraform's state, this pipeline included. Create and approve a blob private endpoint first (see ${STORAGE_CHECK_IDS.privateEndpoint}).`,
    );
  } else {
    if (failed.has(STORAGE_CHECK_IDS.publicNetwork)) {
      plan.update.publicNetworkAccess = 'Disabled';
      plan.changes.push(`publicNetworkAccess: ${account.publicNetworkAccess ?? 'unset'} → Disabled`);
    }
    if (failed.has(STORAGE_CHECK_IDS.defaultAction)) {
      // The PATCH replaces the whole rule set: keep its rules and its bypass (trusted services stay allowed).
      plan.update.networkRuleSet = { ...(account.networkRuleSet ?? { bypass: 'AzureServices' }), defaultAction: 'Deny' };
      plan.changes.push(`networkAcls.defaultAction: ${account.networkRuleSet?.defaultAction ?? 'unset'} → Deny`);
    }
  }
  if (failed.has(STORAGE_CHECK_IDS.blobPublicAccess)) {
    plan.update.allowBlobPublicAccess = false;
    plan.changes.push(`allowBlobPublicAccess: ${account.allowBlobPublicAccess ?? 'unset'} → false`);
  }
  if (failed.has(STORAGE_CHECK_IDS.tlsVersion)) {
    plan.update.minimumTlsVersion = 'TLS1_2';
    plan.changes.push(`minimumTlsVersion: ${account.minimumTlsVersion ?? 'unset'} → TLS1_2`);
  }
  if (failed.has(STORAGE_CHECK_IDS.sharedKey)) {
    plan.refusals.push(
      `${STORAGE_CHECK_IDS.sharedKey}: Shared Key stays allowed because Terraform's azurerm backend reads state with the account key unless the backend sets use_azuread_auth = true; turning keys off could break every pipeline using this state. Move the backends to Entra ID, then run the fix.`,
    );
  }
  return plan;
}
