// The PrivateLinkGuard task without Azure DevOps: read the registry and the cluster from ARM, run
// the posture checks, optionally repair the registry, and say whether the run passes.
import { ContainerRegistryManagementClient, type PrivateEndpointConnection, type Registry } from '@azure/arm-containerregistry';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { armClientSetup, describeArmError, type ArmEndpoint } from '../azure/armPipeline.js';
import { createCredential, type AzureIdentity } from '../azure/entra.js';
import { InputError } from '../errors.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import type { CheckResult, ResourceRef } from './checks.js';
import { checkCluster } from './clusterChecks.js';
import { checkRegistryDns, systemResolver, type HostResolver } from './dnsCheck.js';
import { planRegistryRemediation } from './remediation.js';
import { checkRegistry } from './registryChecks.js';
import { describeFinding } from './report.js';

/**
 * `audit`: report, never fail. `enforce`: fail on any high finding. `remediate`: repair what is
 * safe on the registry, then judge what is left as `enforce` does.
 */
export type GuardMode = 'audit' | 'enforce' | 'remediate';
export const GUARD_MODES: readonly GuardMode[] = ['audit', 'enforce', 'remediate'];

export interface PrivateLinkGuardOptions {
  arm: ArmEndpoint;
  identity: AzureIdentity;
  resourceGroup: string;
  /** At least one of registryName and clusterName. */
  registryName?: string;
  clusterName?: string;
  mode: GuardMode;
  /** Resolve the registry's names from where this runs. Default true. */
  dnsCheck?: boolean;
  /** Default: the system resolver. */
  resolver?: HostResolver;
  /** Agent TLS trust and proxy. Default: direct, Node's CAs. */
  transport?: TransportOptions;
  logger: Logger;
  secrets: SecretRegistry;
}

export interface RegistryRemediationResult {
  changes: string[];
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
  /** Present in `remediate` mode when a registry was checked. */
  remediation?: RegistryRemediationResult;
  /** Whether the mode says the run fails. */
  failed: boolean;
}

interface RegistryState {
  ref: ResourceRef;
  registry: Registry;
  connections: PrivateEndpointConnection[];
}

export async function runPrivateLinkGuard(options: PrivateLinkGuardOptions): Promise<PrivateLinkGuardResult> {
  if (!options.registryName && !options.clusterName) {
    throw new InputError('registryName', 'neither registryName nor clusterName is set; name the registry, the cluster or both.');
  }
  const { logger, resourceGroup } = options;
  const transport = new HttpTransport(options.transport);
  try {
    const setup = armClientSetup(options.arm, createCredential(options.identity, transport, options.secrets), transport);
    const checks: CheckResult[] = [];
    let remediation: RegistryRemediationResult | undefined;
    let remediated = 0;

    if (options.registryName) {
      const client = new ContainerRegistryManagementClient(setup.credential, options.arm.subscriptionId, setup.options);
      const state = await readRegistry(client, { resourceGroup, name: options.registryName });
      logger.info(`Registry ${state.registry.id ?? state.ref.name}: login server ${state.registry.loginServer ?? 'unknown'}, SKU ${state.registry.sku?.name ?? 'unknown'}`);
      const dns = options.dnsCheck === false ? [] : [await checkRegistryDns(state.ref, state.registry, options.resolver ?? systemResolver)];
      let registryChecks = checkRegistry({ ref: state.ref, registry: state.registry, privateEndpointConnections: state.connections });
      if (options.mode === 'remediate') {
        const before = registryChecks;
        ({ registryChecks, remediation } = await remediateRegistry(client, state, before, logger));
        remediated = before.filter((check) => check.status === 'fail' && registryChecks.find((after) => after.id === check.id)?.status === 'pass').length;
      }
      checks.push(...registryChecks, ...dns);
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
    return { ref, registry, connections };
  } catch (error) {
    throw describeArmError(error, read);
  }
}

/** PATCHes what the plan allows, waits for ARM's long-running operation, and checks the result again. */
async function remediateRegistry(
  client: ContainerRegistryManagementClient,
  state: RegistryState,
  before: CheckResult[],
  logger: Logger,
): Promise<{ registryChecks: CheckResult[]; remediation: RegistryRemediationResult }> {
  const plan = planRegistryRemediation(state.registry, state.connections, before);
  for (const refusal of plan.refusals) logger.warn(`Not remediated: ${refusal}`);
  if (plan.changes.length === 0) return { registryChecks: before, remediation: { changes: [], refusals: plan.refusals } };
  logger.info(`Updating registry '${state.ref.name}': ${plan.changes.join('; ')}`);
  const updated = await client.registries
    .update(state.ref.resourceGroup, state.ref.name, plan.update)
    .pollUntilDone()
    .catch((error: unknown) => {
      throw describeArmError(error, {
        action: `update registry '${state.ref.name}' in resource group '${state.ref.resourceGroup}'`,
        permission: 'the Contributor role (Microsoft.ContainerRegistry/registries/write) on the registry',
      });
    });
  for (const change of plan.changes) logger.info(`Changed ${change}`);
  return {
    registryChecks: checkRegistry({ ref: state.ref, registry: updated, privateEndpointConnections: state.connections }),
    remediation: { changes: plan.changes, refusals: plan.refusals },
  };
}
