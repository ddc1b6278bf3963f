import { randomBytes, randomUUID } from 'node:crypto';
import { startArm } from '../test/arm/armServer.js';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

/**
 * PrivateLinkGuard@1 in audit mode against the ARM stand-in: a registry with an approved private
 * endpoint whose public access was never closed (the `--default-action Deny` the private-link docs
 * forgot) next to a private cluster, and a Terraform state account with its blob private endpoint
 * that still accepts account keys. The guard warns with the fixes and the run succeeds with issues.
 */
export const guardStep: DemoStep = {
  title: 'PrivateLinkGuard@1 — audit a registry left open to the internet, a private cluster and the Terraform state account',
  async run({ env }) {
    const arm = await startArm({ ca: env.ca, entra: env.entra });
    try {
      arm.addRegistry('rg-platform', 'contosoregistry', { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } });
      arm.addPrivateEndpointConnection('rg-platform', 'contosoregistry', 'pe-aks-agents', 'Approved');
      arm.addCluster('rg-platform', 'aks-private');
      arm.addStorageAccount('rg-tfstate', 'contosotfstate', { allowSharedKeyAccess: true });
      arm.addStoragePrivateEndpoint('rg-tfstate', 'contosotfstate', 'pe-tfstate-blob', 'blob', 'Approved');
      const clientId = randomUUID();
      const clientSecret = randomBytes(24).toString('base64url');
      arm.grant(env.entra.addSecretClient(clientId, clientSecret).objectId, 'Reader');
      return await runTask('PrivateLinkGuard', {
        // The demo runs outside any private network, so name resolution from the agent is not checked.
        inputs: {
          azureSubscription: 'contoso-arm', resourceGroup: 'rg-platform', registryName: 'contosoregistry', clusterName: 'aks-private',
          storageResourceGroup: 'rg-tfstate', storageAccountName: 'contosotfstate', mode: 'audit', dnsCheck: 'false',
        },
        connections: {
          'contoso-arm': {
            scheme: 'ServicePrincipal',
            url: arm.url,
            parameters: { serviceprincipalid: clientId, serviceprincipalkey: clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
            data: { environmentAuthorityUrl: env.entra.authorityUrl, subscriptionId: arm.subscriptionId, activeDirectoryServiceEndpointResourceId: arm.audience },
          },
        },
        env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
      });
    } finally {
      await arm.stop();
    }
  },
};
