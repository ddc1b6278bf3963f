import { randomBytes, randomUUID } from 'node:crypto';
import { startArm } from '../test/arm/armServer.js';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

/**
 * PrivateLinkGuard@1 in audit mode against the ARM stand-in: a registry with an approved private
 * endpoint whose public access was never closed (the `--default-action Deny` the private-link docs
 * forgot) next to a private cluster. The guard warns with the fix and the run succeeds with issues.
 */
export const guardStep: DemoStep = {
  title: 'PrivateLinkGuard@1 — audit a registry left open to the internet and a private cluster',
  async run({ env }) {
    const arm = await startArm({ ca: env.ca, entra: env.entra });
    try {
      arm.addRegistry('rg-platform', 'contosoregistry', { publicNetworkAccess: 'Enabled', networkRuleSet: { defaultAction: 'Allow', ipRules: [] } });
      arm.addPrivateEndpointConnection('rg-platform', 'contosoregistry', 'pe-aks-agents', 'Approved');
      arm.addCluster('rg-platform', 'aks-private');
      const clientId = randomUUID();
      const clientSecret = randomBytes(24).toString('base64url');
      arm.grant(env.entra.addSecretClient(clientId, clientSecret).objectId, 'Reader');
      return await runTask('PrivateLinkGuard', {
        // The demo runs outside any private network, so name resolution from the agent is not checked.
        inputs: { azureSubscription: 'contoso-arm', resourceGroup: 'rg-platform', registryName: 'contosoregistry', clusterName: 'aks-private', mode: 'audit', dnsCheck: 'false' },
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
