// Posture checks of an Azure Container Registry, read from its ARM resource and its private
// endpoint connections. The settings and their `az acr` switches follow the ACR docs on private
// link, network rules, dedicated data endpoints and data exfiltration protection.
import type { PrivateEndpointConnection, Registry } from '@azure/arm-containerregistry';
import { azCommand, runChecks, type CheckDefinition, type CheckResult, type ResourceRef } from './checks.js';

export interface RegistryFacts {
  ref: ResourceRef;
  registry: Registry;
  privateEndpointConnections: PrivateEndpointConnection[];
}

export const REGISTRY_CHECK_IDS = {
  publicNetwork: 'acr-public-network',
  privateEndpoint: 'acr-private-endpoint',
  dataEndpoints: 'acr-data-endpoints',
  adminUser: 'acr-admin-user',
  anonymousPull: 'acr-anonymous-pull',
  exportPolicy: 'acr-export-policy',
  trustedServices: 'acr-trusted-services',
} as const;

/** `az acr update --name … --resource-group … <switches>`. */
function acrUpdate(ref: ResourceRef, ...switches: string[]): string {
  return azCommand(['acr', 'update', '--name', ref.name, '--resource-group', ref.resourceGroup, ...switches]);
}

export function approvedConnections(connections: PrivateEndpointConnection[]): PrivateEndpointConnection[] {
  return connections.filter((connection) => connection.privateLinkServiceConnectionState?.status === 'Approved');
}

/** Whether the network rules keep the public internet out (the verdict of acr-public-network). */
export function publicAccessClosed(registry: Registry): boolean {
  const defaultAction = registry.networkRuleSet?.defaultAction ?? 'Allow';
  return registry.publicNetworkAccess === 'Disabled' || (defaultAction === 'Deny' && (registry.networkRuleSet?.ipRules ?? []).length === 0);
}

function connectionSummary(connection: PrivateEndpointConnection): string {
  return `${connection.name ?? 'unnamed'}: ${connection.privateLinkServiceConnectionState?.status ?? 'unknown'}`;
}

const REGISTRY_CHECKS: CheckDefinition<RegistryFacts>[] = [
  {
    id: REGISTRY_CHECK_IDS.publicNetwork,
    title: 'Public network access is closed',
    severity: 'high',
    // Either switch closes the public endpoint; the ACR private-link docs long mentioned neither,
    // so registries with a private endpoint stayed open to the internet.
    evaluate: ({ ref, registry }) => {
      const publicAccess = registry.publicNetworkAccess ?? 'Enabled';
      const defaultAction = registry.networkRuleSet?.defaultAction ?? 'Allow';
      const ipRules = (registry.networkRuleSet?.ipRules ?? []).map((rule) => rule.iPAddressOrRange);
      const seen = `publicNetworkAccess=${publicAccess}, networkRuleSet.defaultAction=${defaultAction}, ${ipRules.length ? `IP rules ${ipRules.join(', ')}` : 'no IP rules'}`;
      return { status: publicAccessClosed(registry) ? 'pass' : 'fail', evidence: seen, fix: acrUpdate(ref, '--public-network-enabled', 'false', '--default-action', 'Deny') };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.privateEndpoint,
    title: 'At least one private endpoint connection is approved',
    severity: 'high',
    evaluate: ({ ref, registry, privateEndpointConnections }) => {
      const approved = approvedConnections(privateEndpointConnections);
      if (approved.length > 0) return { status: 'pass', evidence: `approved: ${approved.map((connection) => connection.name).join(', ')}` };
      const pending = privateEndpointConnections.find((connection) => connection.privateLinkServiceConnectionState?.status === 'Pending');
      const fix = pending
        ? azCommand(['acr', 'private-endpoint-connection', 'approve', '--registry-name', ref.name, '--resource-group', ref.resourceGroup, '--name', pending.name ?? ''])
        : azCommand([
            'network', 'private-endpoint', 'create', '--resource-group', ref.resourceGroup, '--name', `${ref.name}-pe`,
            '--vnet-name', '<vnet-name>', '--subnet', '<subnet-name>', '--private-connection-resource-id', registry.id ?? '<registry-id>',
            '--group-id', 'registry', '--connection-name', `${ref.name}-pe`,
          ]);
      const evidence = privateEndpointConnections.length
        ? `no approved connection (${privateEndpointConnections.map(connectionSummary).join(', ')})`
        : 'no private endpoint connections';
      return { status: 'fail', evidence, fix };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.dataEndpoints,
    title: 'Dedicated data endpoints are enabled',
    severity: 'medium',
    // Without them, layer downloads are redirected to a storage account the private endpoint does
    // not cover; with them, `<registry>.<region>.data.azurecr.io` serves the data privately.
    evaluate: ({ ref, registry, privateEndpointConnections }) => {
      if (privateEndpointConnections.length === 0) return { status: 'skip', evidence: 'no private endpoint connections' };
      const enabled = registry.dataEndpointEnabled === true;
      const hosts = registry.dataEndpointHostNames?.length ? ` (${registry.dataEndpointHostNames.join(', ')})` : '';
      return { status: enabled ? 'pass' : 'fail', evidence: `dataEndpointEnabled=${enabled}${hosts}`, fix: acrUpdate(ref, '--data-endpoint-enabled', 'true') };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.adminUser,
    title: 'The admin user is disabled',
    severity: 'medium',
    evaluate: ({ ref, registry }) => {
      const enabled = registry.adminUserEnabled === true;
      return { status: enabled ? 'fail' : 'pass', evidence: `adminUserEnabled=${enabled}`, fix: acrUpdate(ref, '--admin-enabled', 'false') };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.anonymousPull,
    title: 'Anonymous pull is disabled',
    severity: 'high',
    evaluate: ({ ref, registry }) => {
      const enabled = registry.anonymousPullEnabled === true;
      return { status: enabled ? 'fail' : 'pass', evidence: `anonymousPullEnabled=${enabled}`, fix: acrUpdate(ref, '--anonymous-pull-enabled', 'false') };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.exportPolicy,
    title: 'Exports are disabled (data exfiltration protection)',
    severity: 'medium',
    // The export policy is `enabled` unless set; ACR accepts `disabled` only with public access disabled.
    evaluate: ({ ref, registry }) => {
      const status = registry.policies?.exportPolicy?.status ?? 'enabled';
      return { status: status === 'disabled' ? 'pass' : 'fail', evidence: `policies.exportPolicy.status=${status}`, fix: acrUpdate(ref, '--allow-exports', 'false') };
    },
  },
  {
    id: REGISTRY_CHECK_IDS.trustedServices,
    title: 'Trusted Azure services may bypass the network rules (Microsoft Defender image scanning)',
    severity: 'medium',
    // Defender for Containers pulls images to scan them as a trusted service: once the network rules
    // shut the public endpoint, `None` silently stops the scanning. Only matters on a private registry.
    evaluate: ({ ref, registry }) => {
      const bypass = registry.networkRuleBypassOptions ?? 'AzureServices';
      if (!publicAccessClosed(registry)) return { status: 'skip', evidence: `networkRuleBypassOptions=${bypass}; public access is open, so Defender reaches the registry without it` };
      return {
        status: bypass === 'AzureServices' ? 'pass' : 'fail',
        evidence: bypass === 'AzureServices' ? 'networkRuleBypassOptions=AzureServices' : `networkRuleBypassOptions=${bypass}: Microsoft Defender's image scanning cannot reach the registry`,
        fix: acrUpdate(ref, '--allow-trusted-services', 'true'),
      };
    },
  },
];

export function checkRegistry(facts: RegistryFacts): CheckResult[] {
  return runChecks(REGISTRY_CHECKS, facts, `registry '${facts.ref.name}'`);
}
