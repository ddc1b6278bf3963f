// The PrivateLinkGuard task without Azure DevOps: read the registry, the cluster and the Terraform
// state account from ARM, run the posture checks, optionally repair the registry and the account,
// and say whether the run passes.
import { ContainerRegistryManagementClient, type PrivateEndpointConnection, type Registry } from '@azure/arm-containerregistry';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { createStorageManagement } from '@azure/arm-storage/api';
import { armClientSetup, describeArmError, type ArmEndpoint } from '../azure/armPipeline.js';
import { createCredential, type AzureIdentity } from '../azure/entra.js';
import { InputError } from '../errors.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import type { CheckResult, ResourceRef } from './checks.js';
import { checkCluster } from './clusterChecks.js';
import { checkRegistryDns, systemResolver, type HostResolver } from './dnsCheck.js';
import { planRegistryRemediation, planStorageRemediation, type RemediationPlan } from './remediation.js';
import { approvedConnections, checkRegistry } from './registryChecks.js';
import { describeFinding } from './report.js';
import { readStorageAccount, updateStorageAccount } from './storageAccount.js';
import { checkStorageAccount, checkStorageDns } from './storageChecks.js';

/**
 * `audit`: report, never fail. `enforce`: fail on any high finding. `remediate`: repair what is
 * safe on the registry and the storage account, then judge what is left as `enforce` does.
 */
export type GuardMode = 'audit' | 'enforce' | 'remediate';
export const GUARD_MODES: readonly GuardMode[] = ['audit', 'enforce', 'remediate'];

/** The public cloud's storage DNS suffix, for connections that carry none. */
export const PUBLIC_CLOUD_STORAGE_SUFFIX = 'core.windows.net';

export interface PrivateLinkGuardOptions {
  arm: ArmEndpoint;
  identity: AzureIdentity;
  /** Resource group of the registry and the cluster, and of the storage account unless storageResourceGroup says otherwise. */
  resourceGroup: string;
  /** At least one of registryName, clusterName and storageAccountName. */
  registryName?: string;
  clusterName?: string;
  /** The storage account holding Terraform state. */
  storageAccountName?: string;
  /** Default: resourceGroup. */
  storageResourceGroup?: string;
  /** The cloud's storage DNS suffix, from the service connection. Default `core.windows.net`. */
  storageEndpointSuffix?: string;
  mode: GuardMode;
  /** Resolve the registry's and the storage account's names from where this runs. Default true. */
  dnsCheck?: boolean;
  /** Default: the system resolver. */
  resolver?: HostResolver;
  /** Agent TLS trust and proxy. Default: direct, Node's CAs. */
  transport?: TransportOptions;
  logger: Logger;
  secrets: SecretRegistry;
}

export interface RemediationResult {
  /** `<resource>: setting: old → new`, one per setting changed. */
  changes: string[];
  /** Failed checks left alone on purpose, with the reason. */
  refusals: string[];
}

export interface PrivateLinkGuardResult {
  mode: GuardMode;
  /** Every check as it stands at the end (after remediation). */
  checks: CheckResult[];
  /** The failed checks among them. */
  findings: CheckResult[];
  highFindings: number;
  /** Checks that failed before remediation and pass after it. */
  remediated: number;
  /** Present in `remediate` mode when a registry or a storage account was checked. */
  remediation?: RemediationResult;
  /** Whether the mode says the run fails. */
  failed: boolean;
}

interface RegistryState {
  ref: ResourceRef;
  registry: Registry;
  connections: PrivateEndpointConnection[];
  /** Locations of the registry's replicas, the home region among them. */
  replicaLocations: string[];
}

export async function runPrivateLinkGuard(options: PrivateLinkGuardOptions): Promise<PrivateLinkGuardResult> {
  if (!options.registryName && !options.clusterName && !options.storageAccountName) {
    throw new InputError('registryName', 'none of registryName, clusterName and storageAccountName is set; name at least one resource to check.');
  }
  const { logger, resourceGroup } = options;
  const resolver = options.resolver ?? systemResolver;
  const dnsCheck = options.dnsCheck !== false;
  const transport = new HttpTransport({ logger: options.logger, ...options.transport });
  try {
    const setup = armClientSetup(options.arm, createCredential(options.identity, transport, options.secrets), transport);
    const checks: CheckResult[] = [];
    const remediate = options.mode === 'remediate' && Boolean(options.registryName || options.storageAccountName);
    const remediation: RemediationResult | undefined = remediate ? { changes: [], refusals: [] } : undefined;
    let remediated = 0;

    if (options.registryName) {
      const client = new ContainerRegistryManagementClient(setup.credential, options.arm.subscriptionId, setup.options);
      const state = await readRegistry(client, { resourceGroup, name: options.registryName });
      logger.info(`Registry ${state.registry.id ?? state.ref.name}: login server ${state.registry.loginServer ?? 'unknown'}, SKU ${state.registry.sku?.name ?? 'unknown'}, regions ${state.replicaLocations.join(', ') || state.registry.location}`);
      let registryChecks = checkRegistry({ ref: state.ref, registry: state.registry, privateEndpointConnections: state.connections });
      if (remediation) {
        const plan = planRegistryRemediation(state.registry, state.connections, registryChecks);
        const after = await applyPlan(`registry '${state.ref.name}'`, registryChecks, plan, remediation, logger, async (update) => {
          const updated = await client.registries
            .update(state.ref.resourceGroup, state.ref.name, update)
            .pollUntilDone()
            .catch((error: unknown) => {
              throw describeArmError(error, {
                action: `update registry '${state.ref.name}' in resource group '${state.ref.resourceGroup}'`,
                permission: 'the Contributor role (Microsoft.ContainerRegistry/registries/write) on the registry',
              });
            });
          return checkRegistry({ ref: state.ref, registry: updated, privateEndpointConnections: state.connections });
        });
        remediated += countFixed(registryChecks, after);
        registryChecks = after;
      }
      checks.push(...registryChecks);
      if (dnsCheck) checks.push(await checkRegistryDns(state.ref, state.registry, state.replicaLocations, approvedConnections(state.connections).length > 0, resolver));
    }

    if (options.clusterName) {
      const client = new ContainerServiceClient(setup.credential, options.arm.subscriptionId, setup.options);
      const ref = { resourceGroup, name: options.clusterName };
      const cluster = await client.managedClusters.get(resourceGroup, ref.name).catch((error: unknown) => {
        throw describeArmError(error, { action: `read cluster '${ref.name}' in resource group '${resourceGroup}'`, permission: 'the Reader role on the cluster or its resource group' });
      });
      logger.info(`Cluster ${cluster.id ?? ref.name}: Kubernetes ${cluster.kubernetesVersion ?? 'unknown'}`);
      checks.push(...checkCluster({ ref, cluster }));
    }

    if (options.storageAccountName) {
      const context = createStorageManagement(setup.credential, options.arm.subscriptionId, setup.options);
      const ref = { resourceGroup: options.storageResourceGroup ?? resourceGroup, name: options.storageAccountName };
      const state = await readStorageAccount(context, ref);
      logger.info(`Storage account ${state.account.id ?? ref.name}: kind ${state.account.kind ?? 'unknown'}, SKU ${state.account.sku?.name ?? 'unknown'}`);
      let storageChecks = checkStorageAccount(state);
      if (remediation) {
        const plan = planStorageRemediation(state.account, state.connections, storageChecks);
        const after = await applyPlan(`storage account '${ref.name}'`, storageChecks, plan, remediation, logger, async (update) =>
          checkStorageAccount({ ...state, account: await updateStorageAccount(context, ref, update) }),
        );
        remediated += countFixed(storageChecks, after);
        storageChecks = after;
      }
      checks.push(...storageChecks);
      if (dnsCheck) checks.push(await checkStorageDns(ref, options.storageEndpointSuffix ?? PUBLIC_CLOUD_STORAGE_SUFFIX, resolver));
    }

    const findings = checks.filter((check) => check.status === 'fail');
    for (const check of checks) if (check.status !== 'fail') logger.info(`${check.status === 'pass' ? 'pass' : 'not applicable'}: ${check.id} — ${check.resource}: ${check.evidence}`);
    for (const finding of findings) logger.warn(describeFinding(finding));
    const highFindings = findings.filter((finding) => finding.severity === 'high').length;
    return { mode: options.mode, checks, findings, highFindings, remediated, remediation, failed: options.mode !== 'audit' && highFindings > 0 };
  } finally {
    await transport.close();
  }
}

async function readRegistry(client: ContainerRegistryManagementClient, ref: ResourceRef): Promise<RegistryState> {
  const read = { action: `read registry '${ref.name}' in resource group '${ref.resourceGroup}'`, permission: 'the Reader role on the registry or its resource group' };
  try {
    const registry = await client.registries.get(ref.resourceGroup, ref.name);
    const connections: PrivateEndpointConnection[] = [];
    for await (const connection of client.privateEndpointConnections.list(ref.resourceGroup, ref.name)) connections.push(connection);
    // Geo-replication is a Premium feature; lower tiers have their home region only.
    const replicaLocations: string[] = [];
    if (registry.sku?.name === 'Premium') for await (const replica of client.replications.list(ref.resourceGroup, ref.name)) replicaLocations.push(replica.location);
    return { ref, registry, connections, replicaLocations };
  } catch (error) {
    throw describeArmError(error, read);
  }
}

/**
 * Logs and records what the plan refuses; when it changes anything, sends the one update and
 * returns the resource's checks as they stand afterwards (else the checks as they were).
 */
async function applyPlan<Update>(
  resource: string,
  before: CheckResult[],
  plan: RemediationPlan<Update>,
  result: RemediationResult,
  logger: Logger,
  send: (update: Update) => Promise<CheckResult[]>,
): Promise<CheckResult[]> {
  for (const refusal of plan.refusals) logger.warn(`Not remediated: ${refusal}`);
  result.refusals.push(...plan.refusals);
  if (plan.changes.length === 0) return before;
  logger.info(`Updating ${resource}: ${plan.changes.join('; ')}`);
  const after = await send(plan.update);
  for (const change of plan.changes) logger.info(`Changed ${change}`);
  result.changes.push(...plan.changes.map((change) => `${resource}: ${change}`));
  return after;
}

/** Checks that failed before and pass after. */
function countFixed(before: CheckResult[], after: CheckResult[]): number {
  return before.filter((check) => check.status === 'fail' && after.find((candidate) => candidate.id === check.id)?.status === 'pass').length;
}
