// Runs helm on the agent pool chart (helm/azure-pipelines-agent) and turns what it renders into
// objects, so the render and install tests check fields rather than text.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { testToolPath } from '../env/environment.js';
import { runTool, ToolError } from '../env/processes.js';

export const CHART_DIR = fileURLToPath(new URL('../../helm/azure-pipelines-agent', import.meta.url));

/**
 * The Kubernetes version `helm template` assumes. A helm built from its Go module (as
 * scripts/install-test-tools.sh does) defaults to v1.20, below the chart's kubeVersion.
 */
const RENDER_KUBE_VERSION = '1.34.0';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** One rendered manifest; the fields tests read are typed where they are read. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}

export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    runAsGroup?: number;
    seccompProfile?: { type: string };
    appArmorProfile?: { type: string };
  };
  args?: string[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  secret?: { secretName: string; items?: { key: string; path: string }[]; defaultMode?: number };
  configMap?: { name: string };
  persistentVolumeClaim?: { claimName: string };
  csi?: { driver: string };
  hostPath?: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  initContainers?: Container[];
  containers: Container[];
  volumes?: Volume[];
  [field: string]: unknown;
}

export interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

/** Names of the scenario values files under the chart's ci/ folder. */
export async function scenarioFiles(): Promise<string[]> {
  const names = await readdir(path.join(CHART_DIR, 'ci'));
  return names.filter((name) => name.endsWith('.yaml')).sort();
}

/** A scenario's values, as the tests need them to know what to expect. */
export async function scenarioValues(file: string): Promise<ScenarioValues> {
  return parse(await readFile(path.join(CHART_DIR, 'ci', file), 'utf8')) as ScenarioValues;
}

/** One entry of the chart's `profiles` value. */
export interface ProfileValues {
  name: string;
  capabilities?: Record<string, string>;
  demands?: string[];
  resources?: Record<string, unknown>;
  maxReplicas?: number;
  image?: { repository?: string; tag?: string; digest?: string };
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
}

/** The values the tests read back from a scenario file (everything else keeps the chart's defaults). */
export interface ScenarioValues {
  mode: 'persistent' | 'scaledJob';
  profiles?: ProfileValues[];
  cleanup?: { enabled?: boolean; offlineMinutes?: number; keepAgents?: string[] };
  caches?: { volume?: Record<string, unknown>; mountPath?: string };
  azp: { url: string; pool?: string };
  auth: { existingSecret?: string; secretType?: 'pat' | 'servicePrincipal'; createSecret?: boolean; workloadIdentity?: { clientId: string; tenantId: string } };
  deployTargets?: string[];
  clusterWide?: boolean;
  drainTimeoutSeconds?: number;
  keda?: { version?: string };
  persistent?: { replicas?: number; workVolumeClaim?: { enabled?: boolean; size?: string; storageClassName?: string } };
  scaledJob?: { maxReplicaCount?: number; idleTimeoutSeconds?: number };
  networkPolicy?: { enabled?: boolean };
  builder?: { enabled?: boolean; namespace?: string; replicas?: number; runtimeClassName?: string; cache?: { size?: string }; networkPolicy?: { extraEgress?: unknown[] } };
}

/** helm with its cache, config and data homes in a folder of its own, never the user's. */
export class Helm {
  private constructor(
    readonly home: string,
    private readonly kubeconfig: string | undefined,
  ) {}

  static async create(kubeconfig?: string): Promise<Helm> {
    return new Helm(await mkdtemp(path.join(tmpdir(), 'agent-pool-helm-')), kubeconfig);
  }

  async run(args: string[], timeoutMs = 120_000): Promise<string> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HELM_CACHE_HOME: path.join(this.home, 'cache'),
      HELM_CONFIG_HOME: path.join(this.home, 'config'),
      HELM_DATA_HOME: path.join(this.home, 'data'),
    };
    if (this.kubeconfig) env.KUBECONFIG = this.kubeconfig;
    const { stdout } = await runTool(testToolPath('helm'), args, { env, timeoutMs });
    return stdout;
  }

  /** Writes `values` as a values file (JSON is YAML) and returns its path, for `-f`. */
  async valuesFile(values: unknown): Promise<string> {
    const file = path.join(this.home, `values-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(file, JSON.stringify(values));
    return file;
  }

  /** `helm template` of the chart with these values files, parsed into objects (hooks and tests included). */
  async render(valuesFiles: string[], options: { release?: string; namespace?: string } = {}): Promise<KubeObject[]> {
    const output = await this.run(['template', options.release ?? 'pool', CHART_DIR, '--namespace', options.namespace ?? 'agents', '--kube-version', RENDER_KUBE_VERSION, ...valuesFiles.flatMap((file) => ['--values', file])]);
    return parseManifests(output);
  }

  async close(): Promise<void> {
    await rm(this.home, { recursive: true, force: true });
  }
}

export function parseManifests(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${document.errors[0]?.message}`);
      return document.toJS() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null);
}

/** Runs `action` expecting a helm failure and returns its stderr. */
export async function helmFailure(action: Promise<unknown>): Promise<string> {
  const error = await action.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (error === undefined) throw new Error('expected helm to fail, but it succeeded');
  if (!(error instanceof ToolError)) throw error instanceof Error ? error : new Error('helm failed without a ToolError');
  return error.stderr;
}

/** The chart's scenario values file path. */
export function scenarioPath(file: string): string {
  return path.join(CHART_DIR, 'ci', file);
}

/** The BuildKit builder's objects (builder.*): in a namespace of their own, with rules of their own. */
export function isBuilderObject(object: KubeObject): boolean {
  return object.metadata.labels?.['app.kubernetes.io/component'] === 'builder';
}

/** Every pod template of the agents' namespace in the rendered objects, with the object holding it (the builder's are not). */
export function podTemplates(objects: KubeObject[]): { owner: KubeObject; template: PodTemplate }[] {
  return allPodTemplates(objects.filter((object) => !isBuilderObject(object)));
}

/** Every pod template in the rendered objects, with the object holding it. */
export function allPodTemplates(objects: KubeObject[]): { owner: KubeObject; template: PodTemplate }[] {
  const found: { owner: KubeObject; template: PodTemplate }[] = [];
  for (const object of objects) {
    const spec = object.spec as Record<string, unknown> | undefined;
    if (object.kind === 'Pod') {
      found.push({ owner: object, template: { metadata: object.metadata, spec: spec as unknown as PodSpec } });
    } else if (object.kind === 'StatefulSet' || object.kind === 'Job') {
      found.push({ owner: object, template: spec?.template as PodTemplate });
    } else if (object.kind === 'ScaledJob') {
      found.push({ owner: object, template: (spec?.jobTargetRef as { template: PodTemplate }).template });
    } else if (object.kind === 'CronJob') {
      found.push({ owner: object, template: (spec?.jobTemplate as { spec: { template: PodTemplate } }).spec.template });
    }
  }
  return found;
}

export function findObject(objects: KubeObject[], kind: string, predicate: (object: KubeObject) => boolean = () => true): KubeObject {
  const object = objects.find((candidate) => candidate.kind === kind && predicate(candidate));
  if (!object) throw new Error(`no ${kind} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return object;
}

export function envValue(container: Container, name: string): string | undefined {
  return container.env?.find((variable) => variable.name === name)?.value;
}

export function agentContainer(template: PodTemplate): Container {
  const container = template.spec.containers.find((candidate) => candidate.name === 'agent');
  if (!container) throw new Error('no agent container');
  return container;
}

/** Pod templates of the pods that run the agent (StatefulSets, ScaledJobs, placeholder hooks): not the test pod, not the cleanup. */
export function agentPodTemplates(objects: KubeObject[]): { owner: KubeObject; template: PodTemplate }[] {
  return podTemplates(objects).filter(({ owner }) => owner.kind !== 'Pod' && owner.kind !== 'CronJob');
}

/** The profile a rendered object belongs to (its `azure-pipelines-agent/profile` label). */
export function profileOf(object: { metadata: { labels?: Record<string, string> } }): string | undefined {
  return object.metadata.labels?.['azure-pipelines-agent/profile'];
}

/** Every environment variable with a literal value, as a map. */
export function envMap(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).flatMap((variable) => (variable.value === undefined ? [] : [[variable.name, variable.value]])));
}
