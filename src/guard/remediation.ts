// What `remediate` may change on a registry, decided from the failed checks. Closing public access
// is done only when an approved private endpoint exists: otherwise nobody, this pipeline included,
// could reach the registry afterwards (issue 7). Cluster findings are never changed.
import type { PrivateEndpointConnection, Registry, RegistryUpdateParameters } from '@azure/arm-containerregistry';
import type { CheckResult } from './checks.js';
import { REGISTRY_CHECK_IDS, approvedConnections } from './registryChecks.js';

export interface RegistryRemediationPlan {
  /** The PATCH body; empty when nothing may be changed. */
  update: RegistryUpdateParameters;
  /** One line per setting changed, `setting: old → new`. */
  changes: string[];
  /** Failed checks left alone on purpose, with the reason. */
  refusals: string[];
}

export function planRegistryRemediation(registry: Registry, connections: PrivateEndpointConnection[], results: CheckResult[]): RegistryRemediationPlan {
  const failed = new Set(results.filter((result) => result.status === 'fail').map((result) => result.id));
  const plan: RegistryRemediationPlan = { update: {}, changes: [], refusals: [] };

  if (failed.has(REGISTRY_CHECK_IDS.publicNetwork)) {
    if (approvedConnections(connections).length > 0) {
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
