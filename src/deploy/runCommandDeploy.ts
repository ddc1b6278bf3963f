// Deploying through AKS run-command: everything the command needs travels in its context (the
// manifests; the chart, value files and overrides), referred to by paths relative to the folder the
// command runs in — the command pod sees nothing of the agent.
import { cp, mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { stringify } from 'yaml';
import type { TokenCredential } from '../azure/entra.js';
import type { HttpTransport } from '../http/transport.js';
import type { AksCluster } from '../kubernetes/aks.js';
import { FIELD_MANAGER } from '../kubernetes/client.js';
import { objectName } from './apply.js';
import { ociChartHost, writeRegistryConfig } from './chartRegistry.js';
import type { DeployOptions, DeployResult, HelmRelease } from './deploy.js';
import { helmPullArgs, helmUpgradeArgs, releaseRevision, runHelm, writeOverridesFile } from './helm.js';
import { helmNetworkEnvironment } from './helmNetwork.js';
import type { LoadedManifest } from './manifests.js';
import { commandScript, runCommandInCluster, type CommandStep } from './runCommand.js';

/** Kinds that live outside namespaces, so `appliedObjects` names them without one (run-command cannot ask discovery first). */
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'StorageClass', 'PersistentVolume',
  'PriorityClass', 'IngressClass', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration', 'APIService', 'RuntimeClass',
]);

const ROLLOUT_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

interface RunCommandDeployOptions extends DeployOptions {
  namespace: string;
  target: AksCluster;
  entra: TokenCredential;
  http: HttpTransport;
  /** The deploy's private folder. */
  work: string;
  manifests?: LoadedManifest[];
}

export async function deployThroughRunCommand(options: RunCommandDeployOptions): Promise<Pick<DeployResult, 'namespace' | 'release' | 'appliedObjects'>> {
  const { namespace } = options;
  const context = join(options.work, 'context');
  await mkdir(context, { mode: 0o700 });
  // When a step fails, the pods and warning events say why, as in the direct path.
  const diagnostics: CommandStep[] = [
    { label: `pods in namespace ${namespace}`, program: 'kubectl', args: ['get', 'pods', `--namespace=${namespace}`, '-o', 'wide'] },
    { label: `warning events in namespace ${namespace}`, program: 'kubectl', args: ['get', 'events', `--namespace=${namespace}`, '--field-selector=type=Warning'] },
  ];
  const run = (steps: CommandStep[]) =>
    runCommandInCluster({ target: options.target, credential: options.entra, transport: options.http, command: commandScript(steps, diagnostics), contextFolder: context, logger: options.logger, signal: options.signal });

  if (options.deployment.kind === 'manifests') {
    const manifests = options.manifests!;
    await writeFile(join(context, 'manifests.yaml'), manifests.map(({ object }) => `---\n${stringify(object)}`).join(''));
    const timeout = `--timeout=${options.deployment.rolloutTimeoutSeconds}s`;
    const steps: CommandStep[] = [
      { label: 'kubectl apply', program: 'kubectl', args: ['apply', '--server-side', '--force-conflicts', `--field-manager=${FIELD_MANAGER}`, `--namespace=${namespace}`, '-f', 'manifests.yaml'] },
    ];
    for (const { object } of manifests) {
      const where = `--namespace=${object.metadata.namespace ?? namespace}`;
      const ref = `${object.kind.toLowerCase()}/${object.metadata.name}`;
      if (ROLLOUT_KINDS.has(object.kind)) steps.push({ label: `kubectl rollout status ${ref}`, program: 'kubectl', args: ['rollout', 'status', ref, where, timeout] });
      if (object.kind === 'Job') steps.push({ label: `kubectl wait ${ref}`, program: 'kubectl', args: ['wait', '--for=condition=complete', ref, where, timeout] });
    }
    await run(steps);
    const appliedObjects = manifests.map(({ object }) =>
      objectName({ kind: object.kind, name: object.metadata.name, namespace: CLUSTER_SCOPED_KINDS.has(object.kind) ? undefined : (object.metadata.namespace ?? namespace) }),
    );
    return { namespace, appliedObjects };
  }

  const release = options.deployment.release;
  const chart = await chartIntoContext(options, release, context);
  const valueFiles: string[] = [];
  for (const [index, file] of release.valueFiles.entries()) valueFiles.push(await copyIntoContext(file, context, index + 1));
  const overridesFile = release.overrides.length > 0 ? basename((await writeOverridesFile(context, release.overrides))!) : undefined;
  const args = helmUpgradeArgs({ ...release, chart, chartVersion: undefined, valueFiles, namespace }, { overridesFile });
  const logs = await run([{ label: 'helm upgrade', program: 'helm', args }]);
  const json = logs.split('\n').reverse().find((line) => line.trim().startsWith('{'));
  const revision = releaseRevision(json ?? logs);
  options.logger.info(`Release ${release.releaseName} is at revision ${revision} in namespace ${namespace}`);
  return { namespace, release: { name: release.releaseName, revision } };
}

/**
 * The chart as a path inside the context. The command pod cannot log in to the registry: an OCI
 * chart is pulled here, by helm with the agent's network settings, and shipped.
 */
async function chartIntoContext(options: RunCommandDeployOptions, release: HelmRelease, context: string): Promise<string> {
  const { chart, chartVersion } = release;
  if (!ociChartHost(chart)) return copyIntoContext(chart, context, 0);
  const registryConfig = join(options.work, 'registry.json');
  const registryHosts = await writeRegistryConfig(registryConfig, chart, options.entra, options.http, options.secrets);
  const env = await helmNetworkEnvironment({ transport: options.transport, folder: options.work, directHosts: [], otherHosts: registryHosts });
  const pulled = join(options.work, 'pulled');
  await mkdir(pulled);
  await runHelm(helmPullArgs(chart, chartVersion, pulled, registryConfig), { home: join(options.work, 'helm'), logger: options.logger, helmPath: options.helmPath, env, signal: options.signal });
  const [file] = await readdir(pulled);
  if (!file) throw new Error(`helm pull wrote nothing into ${pulled}`);
  return copyIntoContext(join(pulled, file), context, 0);
}

/** Copies a file or chart folder into the run-command context as `<index>-<name>` (two value files may share a name); returns that relative path. */
async function copyIntoContext(source: string, context: string, index: number): Promise<string> {
  const target = `${index}-${basename(source)}`;
  await cp(source, join(context, target), { recursive: true });
  return target;
}
