// Posture checks of the storage account that holds Terraform state: a state file holds every
// secret Terraform knows, so the account must be reachable only through its own private endpoint
// for the blob service, never anonymously, and (with Terraform's azurerm backend on Entra ID
// auth) never with the account key. Settings and switches follow the Azure Storage docs on
// network security, private endpoints, anonymous read access, Shared Key and minimum TLS version.
import type { StorageAccount } from '@azure/arm-storage/models';
import { azCommand, runChecks, type CheckDefinition, type CheckResult, type ResourceRef } from './checks.js';
import { checkPrivateDns, privateDnsLinkCommand, type HostResolver } from './dnsCheck.js';

/** A private endpoint connection of the account, with the sub-resource read from the private endpoint itself. */
export interface StorageEndpointConnection {
  name: string;
  /** `Approved`, `Pending`, `Rejected` or `Disconnected`. */
  status: string;
  privateEndpointId?: string;
  /**
   * The sub-resources the private endpoint connects to (`blob`, `file`, …). The account's side of
   * the connection does not say; only the Microsoft.Network private endpoint does. Undefined when
   * it could not be read, with the reason in `unknownReason`.
   */
  groupIds?: string[];
  unknownReason?: string;
}

export interface StorageFacts {
  ref: ResourceRef;
  account: StorageAccount;
  connections: StorageEndpointConnection[];
}

export const STORAGE_CHECK_IDS = {
  publicNetwork: 'storage-public-network',
  defaultAction: 'storage-default-action',
  privateEndpoint: 'storage-private-endpoint',
  blobPublicAccess: 'storage-blob-public-access',
  sharedKey: 'storage-shared-key',
  tlsVersion: 'storage-tls-version',
  privateDns: 'storage-private-dns',
} as const;

/** `az storage account update --name … --resource-group … <switches>`. */
function storageUpdate(ref: ResourceRef, ...switches: string[]): string {
  return azCommand(['storage', 'account', 'update', '--name', ref.name, '--resource-group', ref.resourceGroup, ...switches]);
}

function servesBlob(connection: StorageEndpointConnection): boolean {
  return connection.groupIds?.some((group) => group.toLowerCase() === 'blob') === true;
}

/** Connections that let the VNet reach the blob service privately: the only way in once public access is closed. */
export function approvedBlobConnections(connections: StorageEndpointConnection[]): StorageEndpointConnection[] {
  return connections.filter((connection) => connection.status === 'Approved' && servesBlob(connection));
}

function connectionSummary(connection: StorageEndpointConnection): string {
  const groups = connection.groupIds ? connection.groupIds.join('+') || 'no sub-resource' : `sub-resource unknown: ${connection.unknownReason ?? 'not read'}`;
  return `${connection.name}: ${connection.status}, ${groups}`;
}

const MODERN_TLS = new Set(['TLS1_2', 'TLS1_3']);

const STORAGE_CHECKS: CheckDefinition<StorageFacts>[] = [
  {
    id: STORAGE_CHECK_IDS.publicNetwork,
    title: 'Public network access is disabled',
    severity: 'high',
    // Unset behaves as Enabled: the network rules alone decide who gets in from the internet.
    evaluate: ({ ref, account }) => {
      const value = account.publicNetworkAccess ?? 'unset (Enabled)';
      return { status: account.publicNetworkAccess === 'Disabled' ? 'pass' : 'fail', evidence: `publicNetworkAccess=${value}`, fix: storageUpdate(ref, '--public-network-access', 'Disabled') };
    },
  },
  {
    id: STORAGE_CHECK_IDS.defaultAction,
    title: 'The network rules deny by default',
    severity: 'high',
    // Checked even with public access disabled: the rules are what applies the day someone turns it back on.
    evaluate: ({ ref, account }) => {
      const rules = account.networkRuleSet;
      const ipRules = (rules?.ipRules ?? []).map((rule) => rule.iPAddressOrRange);
      const evidence = [
        `networkAcls.defaultAction=${rules?.defaultAction ?? 'unset (Allow)'}`,
        ipRules.length ? `IP rules ${ipRules.join(', ')}` : 'no IP rules',
        `${rules?.virtualNetworkRules?.length ?? 0} virtual network rule(s)`,
        `bypass=${rules?.bypass ?? 'unset'}`,
      ].join(', ');
      return { status: rules?.defaultAction === 'Deny' ? 'pass' : 'fail', evidence, fix: storageUpdate(ref, '--default-action', 'Deny') };
    },
  },
  {
    id: STORAGE_CHECK_IDS.privateEndpoint,
    title: 'A private endpoint for the blob service is approved',
    severity: 'high',
    evaluate: ({ ref, account, connections }) => {
      const approved = approvedBlobConnections(connections);
      if (approved.length > 0) return { status: 'pass', evidence: `approved for blob: ${approved.map((connection) => connection.name).join(', ')}` };
      const evidence = connections.length ? `no approved blob connection (${connections.map(connectionSummary).join('; ')})` : 'no private endpoint connections';
      const pendingBlob = connections.find((connection) => connection.status === 'Pending' && servesBlob(connection));
      if (pendingBlob) {
        return { status: 'fail', evidence, fix: azCommand(['storage', 'account', 'private-endpoint-connection', 'approve', '--account-name', ref.name, '--resource-group', ref.resourceGroup, '--name', pendingBlob.name]) };
      }
      // An approved endpoint whose sub-resource the connection's identity could not read may be the blob one.
      const unknown = connections.find((connection) => connection.status === 'Approved' && connection.groupIds === undefined && connection.privateEndpointId);
      if (unknown) {
        return { status: 'fail', evidence, fix: azCommand(['role', 'assignment', 'create', '--assignee', '<service-connection-principal-id>', '--role', 'Reader', '--scope', unknown.privateEndpointId!]) };
      }
      const fix = azCommand([
        'network', 'private-endpoint', 'create', '--resource-group', ref.resourceGroup, '--name', `${ref.name}-blob-pe`,
        '--vnet-name', '<vnet-name>', '--subnet', '<subnet-name>', '--private-connection-resource-id', account.id ?? '<storage-account-id>',
        '--group-id', 'blob', '--connection-name', `${ref.name}-blob-pe`,
      ]);
      return { status: 'fail', evidence, fix };
    },
  },
  {
    id: STORAGE_CHECK_IDS.blobPublicAccess,
    title: 'Anonymous read access to blobs is disallowed',
    severity: 'high',
    // Only an explicit false counts: an account that reports nothing may predate the change that
    // made anonymous access disallowed by default for new accounts, and then it is allowed.
    evaluate: ({ ref, account }) => {
      const value = account.allowBlobPublicAccess;
      return { status: value === false ? 'pass' : 'fail', evidence: `allowBlobPublicAccess=${value ?? 'unset'}`, fix: storageUpdate(ref, '--allow-blob-public-access', 'false') };
    },
  },
  {
    id: STORAGE_CHECK_IDS.sharedKey,
    title: 'Shared Key (account key) authorization is disallowed',
    severity: 'medium',
    // Unset means allowed. With keys off, Terraform's azurerm backend must use Entra ID (`use_azuread_auth`).
    evaluate: ({ ref, account }) => {
      const value = account.allowSharedKeyAccess;
      return { status: value === false ? 'pass' : 'fail', evidence: `allowSharedKeyAccess=${value ?? 'unset (allowed)'}`, fix: storageUpdate(ref, '--allow-shared-key-access', 'false') };
    },
  },
  {
    id: STORAGE_CHECK_IDS.tlsVersion,
    title: 'Requests need TLS 1.2 or later',
    severity: 'medium',
    // ARM's interpretation of an unset minimum is TLS 1.0.
    evaluate: ({ ref, account }) => {
      const value = account.minimumTlsVersion;
      return { status: value && MODERN_TLS.has(value) ? 'pass' : 'fail', evidence: `minimumTlsVersion=${value ?? 'unset (TLS1_0)'}`, fix: storageUpdate(ref, '--min-tls-version', 'TLS1_2') };
    },
  },
];

export function checkStorageAccount(facts: StorageFacts): CheckResult[] {
  return runChecks(STORAGE_CHECKS, facts, `storage account '${facts.ref.name}'`);
}

/**
 * The blob endpoint as Terraform's azurerm backend builds it: the account name and the cloud's
 * storage suffix (`core.windows.net` in the public cloud), which is why the suffix comes from the
 * service connection. A private endpoint for `blob` answers that name through the zone
 * `privatelink.blob.<suffix>`.
 */
export function checkStorageDns(ref: ResourceRef, storageSuffix: string, resolver: HostResolver): Promise<CheckResult> {
  return checkPrivateDns(
    {
      id: STORAGE_CHECK_IDS.privateDns,
      title: 'The blob endpoint resolves to private addresses from this agent',
      resource: `storage account '${ref.name}'`,
      hosts: [{ host: `${ref.name}.blob.${storageSuffix}`, role: 'blob endpoint' }],
      noHosts: 'no blob endpoint',
      fix: () => privateDnsLinkCommand(`privatelink.blob.${storageSuffix}`),
    },
    resolver,
  );
}
