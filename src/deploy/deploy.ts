// PrivateAksDeploy@1's core: resolve the connection to a cluster, then deploy a helm chart or a
// set of manifests into it — directly, or through AKS run-command when the API server is out of reach.
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import { createCredential, type AzureIdentity, type TokenCredential } from '../azure/entra.js';
import { InputError } from '../errors.js';
import { HttpTransport, type TransportOptions } from '../http/transport.js';
import type { Logger, SecretRegistry } from '../log.js';
import { accessFromKubeconfig, inClusterAccess, type ClusterAccess, type InClusterOptions } from '../kubernetes/access.js';
import { aksClusterAccess, type AksCluster } from '../kubernetes/aks.js';
import { FIELD_MANAGER, openCluster } from '../kubernetes/client.js';
import { writeKubeconfig } from '../kubernetes/kubeconfigFile.js';
import { applyManifests, objectName } from './apply.js';
import { ociChartHost, writeRegistryConfig } from './chartRegistry.js';
import { helmPullArgs, helmUpgradeArgs, releaseRevision, runHelm, writeOverridesFile, HelmError, type HelmReleaseOptions } from './helm.js';
import { loadManifests, substituteImages, type ImageSubstitution, type LoadedManifest } from './manifests.js';
import { explainPods, waitForRollouts, watchUnreadyPods } from './rollout.js';
import { runCommandInCluster, shellCommand } from './runCommand.js';

export type ClusterConnection =
  | ({ kind: 'inCluster' } & InClusterOptions)
  | { kind: 'kubeconfig'; kubeconfig: string; context?: string; source: string }
  | { kind: 'azureResourceManager'; cluster: AksCluster; admin: boolean }
  | { kind: 'runCommand'; cluster: AksCluster };

export type Deployment =
  | { kind: 'helm'; release: Omit<HelmReleaseOptions, 'namespace'> }
  | { kind: 'manifests'; files: string[]; images: ImageSubstitution[]; rolloutTimeoutSeconds: number };

export interface DeployOptions {
  connection: ClusterConnection;
  /** Target namespace; empty means the connection's own (kubeconfig context or pod namespace), else `default`. */
  namespace?: string;
  deployment: Deployment;
  /** For ARM, run-command and `oci://` charts in ACR. Required by the ARM connection types. */
  identity?: AzureIdentity;
  transport?: TransportOptions;
  /** A private folder (the agent's temp folder): kubeconfig, registry config and overrides go in a subfolder removed afterwards. */
  tempDir: string;
  logger: Logger;
  secrets: SecretRegistry;
  /** Default `helm` from PATH. */
  helmPath?: string;
  /** Between rollout status reads. Default 1 s. */
  pollIntervalMs?: number;
  /** Between run-command polls. Default 5 s. */
  runCommandPollIntervalMs?: number;
}

export interface DeployResult {
  namespace: string;
  /** helm: the release's revision after the upgrade. */
  releaseRevision?: number;
  /** manifests: `Kind/namespace/name` (or `Kind/name` when cluster-scoped) of every applied object. */
  appliedObjects?: string[];
}

export async function deployToCluster(options: DeployOptions): Promise<DeployResult> {
  const http = new HttpTransport(options.transport);
  const work = await mkdtemp(join(options.tempDir, 'aks-deploy-'));
  try {
    const entra = options.identity ? createCredential(options.identity, http, options.secrets) : undefined;
    const manifests = options.deployment.kind === 'manifests' ? await prepareManifests(options.deployment, options.logger) : undefined;
    if (options.connection.kind === 'runCommand') {
      if (!entra) throw new InputError('azureSubscription', 'connectionType runCommand needs an Azure Resource Manager service connection.');
      return await deployThroughRunCommand(options, options.connection.cluster, entra, http, work, manifests);
    }
    const access = await resolveAccess(options.connection, entra, http, options.secrets);
    const namespace = options.namespace || access.defaultNamespace || 'default';
    options.logger.info(`Deploying to ${access.server} as ${access.description}, namespace ${namespace}`);
    if (options.deployment.kind === 'helm') {
      return { namespace, releaseRevision: await deployChart(options, options.deployment.release, access, namespace, entra, http, work) };
    }
    const cluster = openCluster(access, namespace);
    try {
      const applied = await applyManifests(cluster, manifests!, { logger: options.logger });
      await waitForRollouts(cluster, applied, { timeoutMs: options.deployment.rolloutTimeoutSeconds * 1000, logger: options.logger, pollIntervalMs: options.pollIntervalMs });
      return { namespace, appliedObjects: applied.map(objectName) };
    } finally {
      cluster.close();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await http.close();
  }
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

/** helm upgrade --install against a reachable API server; returns the new revision. */
async function deployChart(
  options: DeployOptions,
  release: Omit<HelmReleaseOptions, 'namespace'>,
  access: ClusterAccess,
  namespace: string,
  entra: TokenCredential | undefined,
  http: HttpTransport,
  work: string,
): Promise<number> {
  const files = {
    kubeconfig: join(work, 'kubeconfig'),
    registryConfig: join(work, 'registry.json'),
    overridesFile: await writeOverridesFile(work, release.overrides),
  };
  await writeKubeconfig(files.kubeconfig, access, namespace);
  await writeRegistryConfig(files.registryConfig, release.chart, entra, http, options.secrets);
  const helm = { home: join(work, 'helm'), logger: options.logger, helmPath: options.helmPath };
  const cluster = openCluster(access, namespace);
  // helm's error says only that it timed out or rolled back; the pods say why.
  const releasePods = `app.kubernetes.io/instance=${release.releaseName}`;
  const watcher = watchUnreadyPods(cluster, namespace, releasePods);
  try {
    const revision = releaseRevision(await runHelm(helmUpgradeArgs({ ...release, namespace }, files), helm));
    await watcher.stop();
    options.logger.info(`Release ${release.releaseName} is at revision ${revision} in namespace ${namespace}`);
    return revision;
  } catch (error) {
    const unready = await watcher.stop();
    if (error instanceof HelmError) await explainPods(cluster, namespace, releasePods, options.logger, unready);
    throw error;
  } finally {
    cluster.close();
  }
}

/** Kinds that live outside namespaces, so `appliedObjects` names them without one (run-command cannot ask discovery first). */
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'StorageClass', 'PersistentVolume',
  'PriorityClass', 'IngressClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'APIService', 'RuntimeClass',
]);

const ROLLOUT_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

async function deployThroughRunCommand(
  options: DeployOptions,
  target: AksCluster,
  entra: TokenCredential,
  http: HttpTransport,
  work: string,
  manifests: LoadedManifest[] | undefined,
): Promise<DeployResult> {
  const namespace = options.namespace || 'default';
  const context = join(work, 'context');
  await mkdir(context, { mode: 0o700 });
  const run = (command: string) => runCommandInCluster({ target, credential: entra, transport: http, command, contextFolder: context, logger: options.logger, pollIntervalMs: options.runCommandPollIntervalMs });

  if (options.deployment.kind === 'manifests') {
    await writeFile(join(context, 'manifests.yaml'), manifests!.map(({ object }) => `---\n${stringify(object)}`).join(''));
    const timeout = `--timeout=${options.deployment.rolloutTimeoutSeconds}s`;
    const steps = [shellCommand('kubectl', ['apply', '--server-side', '--force-conflicts', `--field-manager=${FIELD_MANAGER}`, `--namespace=${namespace}`, '-f', 'manifests.yaml'])];
    for (const { object } of manifests!) {
      const where = `--namespace=${object.metadata.namespace ?? namespace}`;
      const ref = `${object.kind.toLowerCase()}/${object.metadata.name}`;
      if (ROLLOUT_KINDS.has(object.kind)) steps.push(shellCommand('kubectl', ['rollout', 'status', ref, where, timeout]));
      if (object.kind === 'Job') steps.push(shellCommand('kubectl', ['wait', '--for=condition=complete', ref, where, timeout]));
    }
    // On failure the pods and warnings say why, as in the direct path.
    const explain = `{ ${shellCommand('kubectl', ['get', 'pods', `--namespace=${namespace}`, '-o', 'wide'])}; ${shellCommand('kubectl', ['get', 'events', `--namespace=${namespace}`, '--field-selector=type=Warning'])}; exit 1; }`;
    await run(`set -e; ${steps.map((step) => `${step} || ${explain}`).join('; ')}`);
    const appliedObjects = manifests!.map(({ object }) =>
      objectName({ kind: object.kind, name: object.metadata.name, namespace: CLUSTER_SCOPED_KINDS.has(object.kind) ? undefined : (object.metadata.namespace ?? namespace) }),
    );
    return { namespace, appliedObjects };
  }

  const release = options.deployment.release;
  // The command pod cannot log in to the registry: an OCI chart is pulled here and shipped in the context.
  let chart = release.chart;
  if (ociChartHost(chart)) {
    const registryConfig = join(work, 'registry.json');
    await writeRegistryConfig(registryConfig, chart, entra, http, options.secrets);
    const pulled = join(work, 'pulled');
    await mkdir(pulled);
    await runHelm(helmPullArgs(chart, release.chartVersion, pulled, registryConfig), { home: join(work, 'helm'), logger: options.logger, helmPath: options.helmPath });
    chart = await copyIntoContext(join(pulled, await onlyFile(pulled)), context);
  } else {
    chart = await copyIntoContext(chart, context);
  }
  const valueFiles = await Promise.all(release.valueFiles.map((file) => copyIntoContext(file, context)));
  const overridesFile = await writeOverridesFile(context, release.overrides);
  const args = helmUpgradeArgs({ ...release, chart, chartVersion: undefined, valueFiles, namespace }, { overridesFile });
  const logs = await run(shellCommand('helm', args));
  const json = logs.split('\n').reverse().find((line) => line.trim().startsWith('{'));
  const revision = releaseRevision(json ?? logs);
  options.logger.info(`Release ${release.releaseName} is at revision ${revision} in namespace ${namespace}`);
  return { namespace, releaseRevision: revision };
}

async function onlyFile(folder: string): Promise<string> {
  const [file] = await readdir(folder);
  if (!file) throw new Error(`helm pull wrote nothing into ${folder}`);
  return file;
}

/** Copies a file or chart folder into the run-command context under a numbered name; returns the relative path. */
async function copyIntoContext(source: string, context: string): Promise<string> {
  const target = `${(await readdir(context)).length}-${basename(source)}`;
  await cp(source, join(context, target), { recursive: true });
  return target;
}
