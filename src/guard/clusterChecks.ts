// Posture checks of an AKS managed cluster, read from its ARM resource. The guard only reports
// these: changing a cluster's API server exposure or authentication from a pipeline could cut off
// the very agents that run it.
import type { ManagedCluster } from '@azure/arm-containerservice';
import { azCommand, runChecks, type CheckDefinition, type CheckResult, type ResourceRef } from './checks.js';

export interface ClusterFacts {
  ref: ResourceRef;
  cluster: ManagedCluster;
}

export const CLUSTER_CHECK_IDS = {
  privateCluster: 'aks-private-cluster',
  localAccounts: 'aks-local-accounts',
  entraRbac: 'aks-entra-rbac',
  networkPolicy: 'aks-network-policy',
} as const;

/** `az aks update --resource-group … --name … <switches>`. */
function aksUpdate(ref: ResourceRef, ...switches: string[]): string {
  return azCommand(['aks', 'update', '--resource-group', ref.resourceGroup, '--name', ref.name, ...switches]);
}

const CLUSTER_CHECKS: CheckDefinition<ClusterFacts>[] = [
  {
    id: CLUSTER_CHECK_IDS.privateCluster,
    title: 'The API server is private',
    severity: 'high',
    evaluate: ({ ref, cluster }) => {
      const access = cluster.apiServerAccessProfile;
      const isPrivate = access?.enablePrivateCluster === true;
      const vnetIntegration = access?.enableVnetIntegration === true;
      const ranges = access?.authorizedIPRanges?.length ? `, authorizedIPRanges=${access.authorizedIPRanges.join(',')}` : '';
      // Only clusters with API Server VNet Integration can be made private in place; the others first need it.
      const fix = vnetIntegration
        ? aksUpdate(ref, '--enable-private-cluster')
        : `${aksUpdate(ref, '--enable-apiserver-vnet-integration', '--apiserver-subnet-id', '<subnet-id>')} && ${aksUpdate(ref, '--enable-private-cluster')}`;
      return { status: isPrivate ? 'pass' : 'fail', evidence: `apiServerAccessProfile.enablePrivateCluster=${isPrivate}, enableVnetIntegration=${vnetIntegration}${ranges}`, fix };
    },
  },
  {
    id: CLUSTER_CHECK_IDS.localAccounts,
    title: 'Local accounts are disabled',
    severity: 'medium',
    // With local accounts, listClusterAdminCredential hands out a certificate that bypasses Entra and RBAC.
    evaluate: ({ ref, cluster }) => {
      const disabled = cluster.disableLocalAccounts === true;
      return { status: disabled ? 'pass' : 'fail', evidence: `disableLocalAccounts=${disabled}`, fix: aksUpdate(ref, '--disable-local-accounts') };
    },
  },
  {
    id: CLUSTER_CHECK_IDS.entraRbac,
    title: 'Entra ID integration with Azure RBAC',
    severity: 'medium',
    evaluate: ({ ref, cluster }) => {
      const managed = cluster.aadProfile?.managed === true;
      const azureRbac = cluster.aadProfile?.enableAzureRbac === true;
      const fix = managed ? aksUpdate(ref, '--enable-azure-rbac') : aksUpdate(ref, '--enable-aad', '--enable-azure-rbac');
      return { status: managed && azureRbac ? 'pass' : 'fail', evidence: `aadProfile.managed=${managed}, aadProfile.enableAzureRBAC=${azureRbac}`, fix };
    },
  },
  {
    id: CLUSTER_CHECK_IDS.networkPolicy,
    title: 'A network policy engine is set',
    severity: 'medium',
    evaluate: ({ ref, cluster }) => {
      const policy = cluster.networkProfile?.networkPolicy ?? 'none';
      return { status: policy === 'none' ? 'fail' : 'pass', evidence: `networkProfile.networkPolicy=${policy}`, fix: aksUpdate(ref, '--network-policy', 'calico') };
    },
  },
];

export function checkCluster(facts: ClusterFacts): CheckResult[] {
  return runChecks(CLUSTER_CHECKS, facts, `cluster '${facts.ref.name}'`);
}
