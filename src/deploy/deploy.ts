// PrivateAksDeploy@1's core: resolve the connection to a cluster, then deploy a helm chart or a
// set of manifests into it — directly, or through AKS run-command when the API server is out of reach.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createCredential, type AzureIdentity, type TokenCredential } from '../azure/entra.js';
import { factTable } from '../runSummary.js';
import { InputError } from '../errors.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import { formatDuration, type Logger, type SecretRegistry } from '../log.js';
import { accessFromKubeconfig, inClusterAccess, type ClusterAccess, type InClusterOptions } from '../kubernetes/access.js';
import { aksClusterAccess, type AksCluster } from '../kubernetes/aks.js';
import { openCluster } from '../kubernetes/client.js';
import { startCredentialServer, type CredentialPluginCommand } from '../kubernetes/credentialServer.js';
import { writeKubeconfig } from '../kubernetes/kubeconfigFile.js';
import { applyManifests, objectName } from './apply.js';
import { writeRegistryConfig } from './chartRegistry.js';
import { helmUpgradeArgs, releaseRevision, runHelm, writeOverridesFile, HelmError, type HelmReleaseOptions } from './helm.js';
import { helmNetworkEnvironment } from './helmNetwork.js';
import { loadManifests, substituteImages, type ImageSubstitution, type LoadedManifest } from './manifests.js';
import { explainPods, waitForRollouts, watchUnreadyPods } from './rollout.js';
import { deployThroughRunCommand } from './runCommandDeploy.js';

export type ClusterConnection =
  | ({ kind: 'inCluster' } & InClusterOptions)
  | { kind: 'kubeconfig'; kubeconfig: string; context?: string; source: string }
  | { kind: 'azureResourceManager'; cluster: AksCluster; admin: boolean }
  | { kind: 'runCommand'; cluster: AksCluster };

export type HelmRelease = Omit<HelmReleaseOptions, 'namespace'>;

export type Deployment =
  | { kind: 'helm'; release: HelmRelease }
  | { kind: 'manifests'; files: string[]; images: ImageSubstitution[]; rolloutTimeoutSeconds: number };

export interface DeployOptions {
  connection: ClusterConnection;
  /** Target namespace; empty means the connection's own (kubeconfig context or pod namespace), else `default`. */
  namespace?: string;
  deployment: Deployment;
  /** For ARM, run-command and `oci://` charts in ACR. Required by the ARM connection types. */
  identity?: AzureIdentity;
  /** The agent's CA and proxy: for the task's own requests and, translated, for helm. */
  transport?: TransportOptions;
  /** A private folder: the deploy's files (kubeconfig, registry login, overrides, run-command context) go in a subfolder removed afterwards. */
  tempDir: string;
  /** How helm starts the kubeconfig credential plug-in (the task bundle's kubeCredential.js); the socket path is appended. */
  credentialPlugin: CredentialPluginCommand;
  logger: Logger;
  secrets: SecretRegistry;
  /** Default `helm` from PATH. */
  helmPath?: string;
  /** Cancels the deploy: helm is stopped and run-command polling ends. */
  signal?: AbortSignal;
}

export interface DeployResult {
  namespace: string;
  /** How the task reached the cluster and as whom, for the log and the run summary. */
  connection: string;
  /** The API server, or the AKS cluster for run-command (which never sees the server). */
  cluster: string;
  /** helm: the release and its revision after the upgrade. */
  release?: { name: string; revision: number };
  /** manifests: `Kind/namespace/name` (or `Kind/name` when cluster-scoped) of every applied object. */
  appliedObjects?: string[];
  durationMs: number;
}

export async function deployToCluster(options: DeployOptions): Promise<DeployResult> {
  const started = Date.now();
  const http = new HttpTransport({ logger: options.logger, ...options.transport });
  const work = await mkdtemp(join(options.tempDir, 'aks-deploy-'));
  try {
    const entra = options.identity ? createCredential(options.identity, http, options.secrets) : undefined;
    const manifests = options.deployment.kind === 'manifests' ? await prepareManifests(options.deployment, options.logger) : undefined;
    if (options.connection.kind === 'runCommand') {
      if (!entra) throw new InputError('azureSubscription', 'connectionType runCommand needs an Azure Resource Manager service connection.');
      const { cluster } = options.connection;
      const outcome = await deployThroughRunCommand({ ...options, namespace: options.namespace || 'default', target: cluster, entra, http, work, manifests });
      return { ...outcome, connection: 'runCommand: AKS run-command as the service connection', cluster: aksName(cluster), durationMs: Date.now() - started };
    }
    const access = await resolveAccess(options.connection, entra, http, options.secrets);
    const namespace = options.namespace || access.defaultNamespace || 'default';
    const connection = `${options.connection.kind}: ${access.description}`;
    const cluster = options.connection.kind === 'azureResourceManager' ? `${aksName(options.connection.cluster)} (${access.server})` : access.server;
    options.logger.info(`Deploying to ${access.server} as ${access.description}, namespace ${namespace}`);
    if (options.deployment.kind === 'helm') {
      const release = options.deployment.release;
      const revision = await deployChart(options, release, access, namespace, entra, http, work);
      return { namespace, connection, cluster, release: { name: release.releaseName, revision }, durationMs: Date.now() - started };
    }
    const client = openCluster(access, namespace);
    try {
      const applied = await applyManifests(client, manifests!, { logger: options.logger });
      await waitForRollouts(client, applied, { timeoutMs: options.deployment.rolloutTimeoutSeconds * 1000, logger: options.logger });
      return { namespace, connection, cluster, appliedObjects: applied.map(objectName), durationMs: Date.now() - started };
    } finally {
      client.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await http.close();
  }
}

function aksName(cluster: AksCluster): string {
  return `AKS cluster '${cluster.cluster}' in resource group '${cluster.resourceGroup}'`;
}

async function prepareManifests(deployment: Extract<Deployment, { kind: 'manifests' }>, logger: Logger): Promise<LoadedManifest[]> {
  const manifests = await loadManifests(deployment.files);
  substituteImages(manifests, deployment.images, logger);
  return manifests;
}

async function resolveAccess(connection: Exclude<ClusterConnection, { kind: 'runCommand' }>, entra: TokenCredential | undefined, http: HttpTransport, secrets: SecretRegistry): Promise<ClusterAccess> {
  switch (connection.kind) {
    case 'inCluster':
      return inClusterAccess(connection);
    case 'kubeconfig':
      return accessFromKubeconfig(connection.kubeconfig, { context: connection.context, entra, secrets, source: connection.source });
    case 'azureResourceManager':
      if (!entra) throw new InputError('azureSubscription', 'connectionType azureResourceManager needs an Azure Resource Manager service connection.');
      return aksClusterAccess({ ...connection.cluster, admin: connection.admin, credential: entra, transport: http, secrets });
  }
}

/**
 * helm upgrade --install against a reachable API server; returns the new revision. helm's
 * kubeconfig holds no credential: its exec plug-in asks this process, which answers from `access`
 * for as long as helm runs.
 */
async function deployChart(options: DeployOptions, release: HelmRelease, access: ClusterAccess, namespace: string, entra: TokenCredential | undefined, http: HttpTransport, work: string): Promise<number> {
  const files = {
    kubeconfig: join(work, 'kubeconfig'),
    registryConfig: join(work, 'registry.json'),
    overridesFile: await writeOverridesFile(work, release.overrides),
  };
  const registryHosts = await writeRegistryConfig(files.registryConfig, release.chart, entra, http, options.secrets);
  const env = await helmNetworkEnvironment({ transport: options.transport, folder: work, directHosts: [new URL(access.server).host], otherHosts: registryHosts });
  const credentials = await startCredentialServer(access, work);
  const client = openCluster(access, namespace);
  // helm's error says only that it timed out or rolled back; the pods say why.
  const releasePods = `app.kubernetes.io/instance=${release.releaseName}`;
  const watcher = watchUnreadyPods(client, namespace, releasePods);
  try {
    await writeKubeconfig(files.kubeconfig, access, namespace, options.credentialPlugin, credentials.socketPath);
    const helm = { home: join(work, 'helm'), logger: options.logger, helmPath: options.helmPath, env, signal: options.signal };
    const revision = releaseRevision(await runHelm(helmUpgradeArgs({ ...release, namespace }, files), helm));
    await watcher.stop();
    options.logger.info(`Release ${release.releaseName} is at revision ${revision} in namespace ${namespace}`);
    return revision;
  } catch (error) {
    const unready = await watcher.stop();
    if (error instanceof HelmError) await explainPods(client, namespace, releasePods, options.logger, unready);
    throw error;
  } finally {
    client.close();
    await credentials.close();
  }
}

/** The run summary attached to the pipeline run. */
export function renderDeploySummary(result: DeployResult): string {
  return factTable('Deployed to Kubernetes', [
    ['Connection', result.connection],
    ['Cluster', result.cluster],
    ['Namespace', `\`${result.namespace}\``],
    ['Release', result.release && `\`${result.release.name}\` revision ${result.release.revision}`],
    ['Applied', result.appliedObjects && describeApplied(result.appliedObjects)],
    ['Time', formatDuration(result.durationMs)],
  ]);
}

function describeApplied(names: string[]): string {
  const shown = names.slice(0, SUMMARY_OBJECTS).map((name) => `\`${name}\``);
  const more = names.length - shown.length;
  return `${names.length} object(s): ${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

/** Objects named in the summary; the full list is the `appliedObjects` output. */
const SUMMARY_OBJECTS = 20;
