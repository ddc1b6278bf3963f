// AKS through Azure Resource Manager: the cluster's kubeconfig from `listClusterUserCredential`
// (or the admin one), never the deprecated `accessProfiles` API that needs cluster-admin
// (https://learn.microsoft.com/rest/api/aks/managed-clusters/list-cluster-user-credentials).
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { armClientSetup, describeArmError, type ArmEndpoint } from '../azure/armPipeline.js';
import type { TokenCredential } from '../azure/entra.js';
import { UserError } from '../errors.js';
import type { HttpTransport } from '../http/transport.js';
import type { SecretRegistry } from '../log.js';
import { accessFromKubeconfig, type ClusterAccess } from './access.js';

export interface AksCluster {
  arm: ArmEndpoint;
  resourceGroup: string;
  cluster: string;
}

export function containerServiceClient(target: AksCluster, credential: TokenCredential, transport: HttpTransport): ContainerServiceClient {
  const setup = armClientSetup(target.arm, credential, transport);
  return new ContainerServiceClient(setup.credential, target.arm.subscriptionId, setup.options);
}

interface AksAccessOptions extends AksCluster {
  /** `listClusterAdminCredential` instead of the user one; fails where local accounts are disabled. */
  admin: boolean;
  credential: TokenCredential;
  transport: HttpTransport;
  secrets: SecretRegistry;
}

/**
 * The API server, CA and credential of an AKS cluster. For an Entra-enabled cluster the kubeconfig's
 * user runs kubelogin; its token comes from `credential` for the AKS audience instead, in process.
 */
export async function aksClusterAccess(options: AksAccessOptions): Promise<ClusterAccess> {
  const client = containerServiceClient(options, options.credential, options.transport);
  const which = options.admin ? 'admin' : 'user';
  const operation = {
    action: `list the ${which} credentials of AKS cluster '${options.cluster}' in resource group '${options.resourceGroup}'`,
    permission: options.admin
      ? "'Azure Kubernetes Service Cluster Admin Role' (Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action) on the cluster"
      : "'Azure Kubernetes Service Cluster User Role' (Microsoft.ContainerService/managedClusters/listClusterUserCredential/action) on the cluster",
  };
  let kubeconfigs;
  try {
    const result = options.admin
      ? await client.managedClusters.listClusterAdminCredentials(options.resourceGroup, options.cluster)
      : await client.managedClusters.listClusterUserCredentials(options.resourceGroup, options.cluster);
    kubeconfigs = result.kubeconfigs ?? [];
  } catch (error) {
    throw describeArmError(error, operation);
  }
  const first = kubeconfigs[0]?.value;
  if (!first) throw new UserError(`Azure returned no kubeconfig for AKS cluster '${options.cluster}'.`);
  const text = Buffer.from(first).toString('utf8');
  return accessFromKubeconfig(text, { entra: options.credential, secrets: options.secrets, source: `the ${which} kubeconfig of AKS cluster '${options.cluster}'` });
}
