// The agent pool chart as rendered by helm, checked field by field: every scenario under ci/ lints
// strictly and renders pods that meet Pod Security `restricted`, drain within their grace period,
// keep secrets in files, reach KEDA's trigger through a registered placeholder, and get RBAC only
// where deployTargets says. Values that make no sense stop the render with a message.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { BUILDCTL, startBuildkit, type BuildkitClientCertificates } from '../env/buildkit.js';
import { createTestCa } from '../env/ca.js';
import { runTool, ToolError } from '../env/processes.js';
import {
  agentContainer,
  agentPodTemplates,
  allPodTemplates,
  CHART_DIR,
  envMap,
  envValue,
  findObject,
  Helm,
  helmFailure,
  isBuilderObject,
  podTemplates,
  profileOf,
  scenarioFiles,
  scenarioPath,
  scenarioValues,
  type KubeObject,
  type PodTemplate,
  type ScenarioValues,
} from './chart.js';

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

interface NetworkPolicyPeer {
  ipBlock?: { cidr: string };
  namespaceSelector?: { matchLabels: Record<string, string> };
  podSelector?: { matchLabels: Record<string, string> };
}

interface NetworkPolicySpec {
  podSelector: { matchLabels: Record<string, string> };
  policyTypes: string[];
  ingress?: unknown[];
  egress: { to?: NetworkPolicyPeer[]; ports?: { protocol: string; port: number }[] }[];
}

interface Trigger {
  type: string;
  metadata: Record<string, string>;
  authenticationRef: { name: string };
}

interface ScaledJobSpec {
  scalingStrategy: { strategy: string };
  rollout: { strategy: string };
  jobTargetRef: { parallelism: number; completions: number; backoffLimit: number; template: PodTemplate };
  triggers: Trigger[];
}

/** Values whose content is free-form (maps of labels, resources, a volume source): documented as one. */
const FREE_FORM_VALUES = new Set(['resources', 'helperResources', 'podLabels', 'podAnnotations', 'nodeSelector', 'affinity', 'networkPolicy.dns.podLabels', 'serviceAccount.annotations', 'caches.volume', 'builder.resources', 'builder.nodeSelector']);

/** Dotted paths of values.yaml's leaves (lists and free-form maps count as one). */
function valuePaths(values: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(values).flatMap(([key, value]) => {
    const name = `${prefix}${key}`;
    const isMap = typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0;
    return isMap && !FREE_FORM_VALUES.has(name) ? valuePaths(value as Record<string, unknown>, `${name}.`) : [name];
  });
}

/**
 * Value names in the first column of the README's tables, spelled out: `a.{b,c}` is a.b and a.c;
 * after `a.b.c`, `.d` is a.b.d and a bare `d` is a.b.d too (`scaledJob.minReplicaCount`, `maxReplicaCount`).
 */
function documentedValues(readme: string): Set<string> {
  const names = new Set<string>();
  for (const line of readme.split('\n')) {
    const firstCell = /^\|([^|]+)\|/.exec(line)?.[1];
    if (!firstCell) continue;
    let previous = '';
    for (const [, token] of firstCell.matchAll(/`([^`]+)`/g)) {
      const parent = previous.includes('.') ? previous.slice(0, previous.lastIndexOf('.')) : '';
      const full = token.startsWith('.') ? `${parent}${token}` : !token.includes('.') && !token.includes('[') && parent ? `${parent}.${token}` : token;
      const braces = /^(.*)\{([^}]+)\}$/.exec(full);
      for (const name of braces ? braces[2].split(',').map((part) => `${braces[1]}${part.trim()}`) : [full]) names.add(name);
      previous = braces ? `${braces[1]}x` : full;
    }
  }
  return names;
}

/** Whether every label of `selector` is on the pod. */
function labelsMatch(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

/** Mount paths the agent writes to; everything else is the read-only image. */
const WRITABLE_PATHS = ['/azp/agent', '/azp/_work', '/tmp', '/home/agent'];

/** The scenarios minus the pieces a test removes or replaces, as a values object for helm. */
const VALID_BASE = {
  azp: { url: 'https://dev.azure.com/contoso', pool: 'pool' },
  image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
  auth: { existingSecret: 'azp-pat' },
  deployTargets: ['apps'],
  networkPolicy: { apiServer: { cidrs: ['10.0.0.1/32'] }, azureDevOps: { cidrs: ['13.107.6.0/24'] } },
};

void describe('agent pool chart: render', () => {
  let helm: Helm;
  let scenarios: string[];
  const rendered = new Map<string, { values: ScenarioValues; objects: KubeObject[] }>();

  before(async () => {
    helm = await Helm.create();
    scenarios = await scenarioFiles();
    for (const file of scenarios) {
      rendered.set(file, { values: await scenarioValues(file), objects: await helm.render([scenarioPath(file)]) });
    }
  });

  after(async () => {
    await helm?.close();
  });

  /** Every scenario's values and objects, for tests that hold for all of them. */
  function eachScenario(): [string, { values: ScenarioValues; objects: KubeObject[] }][] {
    assert.ok(rendered.size >= 5, `expected the five scenarios under ci/, found ${rendered.size}`);
    return [...rendered.entries()];
  }

  void it('defaults keda.version to the KEDA release the tests run (agent-image/versions.env)', async () => {
    const defaults = parse(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as { keda: { version: string } };
    const pinned = /^KEDA_VERSION=v(.+)$/m.exec(await readFile(path.join(CHART_DIR, '..', '..', 'agent-image', 'versions.env'), 'utf8'))?.[1];
    assert.equal(defaults.keda.version, pinned);
  });

  void it('lints every scenario with --strict', async () => {
    for (const file of scenarios) {
      await helm.run(['lint', '--strict', CHART_DIR, '--values', scenarioPath(file)]);
    }
  });

  void it('runs every container non-root, read-only, without privileges or capabilities, under RuntimeDefault seccomp', () => {
    for (const [file, { objects }] of eachScenario()) {
      const templates = podTemplates(objects);
      assert.ok(templates.length >= 2, `${file}: expected the agents and the helm test pod`);
      for (const { owner, template } of templates) {
        const where = `${file}: ${owner.kind}/${owner.metadata.name}`;
        const pod = template.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, where);
        assert.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${where}: runAsUser`);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', where);
        assert.ok(!pod.hostNetwork && !pod.hostPID, `${where}: host namespaces`);
        assert.ok(!(pod.volumes ?? []).some((volume) => volume.hostPath), `${where}: hostPath volume`);
        for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
          const security = container.securityContext;
          assert.equal(security?.allowPrivilegeEscalation, false, `${where}/${container.name}`);
          assert.equal(security?.readOnlyRootFilesystem, true, `${where}/${container.name}`);
          assert.equal(security?.runAsNonRoot, true, `${where}/${container.name}`);
          assert.ok(!security?.privileged, `${where}/${container.name}: privileged`);
          assert.deepEqual(security?.capabilities?.drop, ['ALL'], `${where}/${container.name}`);
          assert.equal(security?.capabilities?.add, undefined, `${where}/${container.name}`);
        }
      }
    }
  });

  void it('gives the agent emptyDir volumes for the folders it writes (persistent agents: a claim for the work folder), with the agent copied into its own', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      for (const { owner, template } of agentPodTemplates(objects)) {
        const where = `${file}: ${owner.kind}/${owner.metadata.name}`;
        const volumes = new Map((template.spec.volumes ?? []).map((volume) => [volume.name, volume]));
        const claims = owner.kind === 'StatefulSet' ? ((owner.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []) : [];
        const mounts = agentContainer(template).volumeMounts ?? [];
        for (const mountPath of WRITABLE_PATHS) {
          const mount = mounts.find((candidate) => candidate.mountPath === mountPath);
          assert.ok(mount, `${where}: nothing mounted at ${mountPath}`);
          if (mountPath === '/azp/_work' && owner.kind === 'StatefulSet' && values.persistent?.workVolumeClaim?.enabled !== false) {
            assert.ok(!volumes.has(mount.name) && claims.some((claim) => claim.metadata.name === mount.name), `${where}: the work folder is not on the agent's volume claim`);
          } else {
            assert.ok(volumes.get(mount.name)?.emptyDir, `${where}: ${mountPath} is not an emptyDir`);
          }
        }
        const copy = template.spec.initContainers?.find((container) => container.name === 'copy-agent');
        const agentVolume = mounts.find((mount) => mount.mountPath === '/azp/agent')?.name;
        const copyTarget = copy?.volumeMounts?.find((mount) => mount.name === agentVolume)?.mountPath;
        assert.ok(copyTarget, `${where}: the init container does not mount the agent volume`);
        assert.deepEqual(copy?.command, ['cp', '-a', '/azp/agent/.', `${copyTarget}/`], where);
      }
    }
  });

  void it('gives every agent pod a grace period above its drain timeout, and keeps the autoscaler from evicting it', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      for (const { owner, template } of agentPodTemplates(objects)) {
        const where = `${file}: ${owner.kind}/${owner.metadata.name}`;
        const drain = Number(envValue(agentContainer(template), 'AZP_DRAIN_TIMEOUT'));
        assert.equal(drain, values.drainTimeoutSeconds ?? 3600, where);
        assert.ok((template.spec.terminationGracePeriodSeconds ?? 30) >= drain + 60, `${where}: grace ${template.spec.terminationGracePeriodSeconds} vs drain ${drain}`);
        assert.equal(template.metadata.annotations?.['cluster-autoscaler.kubernetes.io/safe-to-evict'], 'false', where);
      }
    }
  });

  void it('mounts registration secrets as files and never puts them in the environment (agents, placeholders and the cleanup job)', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      for (const { owner, template } of podTemplates(objects).filter(({ owner }) => owner.kind !== 'Pod')) {
        const where = `${file}: ${owner.kind}/${owner.metadata.name}`;
        const [agent] = template.spec.containers;
        const secretKeysInEnv = (agent.env ?? []).flatMap((variable) => (variable.valueFrom?.secretKeyRef ? [variable.valueFrom.secretKeyRef.key] : []));
        assert.ok(!secretKeysInEnv.includes('pat') && !secretKeysInEnv.includes('clientSecret'), `${where}: ${secretKeysInEnv.join(', ')} in env`);
        const authMode = envValue(agent, 'AZP_AUTH');
        if (values.auth.workloadIdentity) {
          assert.equal(authMode, 'workload-identity', where);
          assert.equal(template.metadata.labels?.['azure.workload.identity/use'], 'true', where);
          assert.ok(!(template.spec.volumes ?? []).some((volume) => volume.secret), `${where}: a secret volume with workload identity`);
          continue;
        }
        const fileVariable = authMode === 'sp' ? 'AZP_CLIENT_SECRET_FILE' : 'AZP_TOKEN_FILE';
        assert.equal(authMode, values.auth.secretType === 'servicePrincipal' ? 'sp' : 'pat', where);
        const secretFile = envValue(agent, fileVariable);
        assert.ok(secretFile, `${where}: ${fileVariable} unset`);
        const mount = agent.volumeMounts?.find((candidate) => secretFile.startsWith(`${candidate.mountPath}/`));
        const volume = template.spec.volumes?.find((candidate) => candidate.name === mount?.name);
        assert.equal(mount?.readOnly, true, where);
        assert.equal(volume?.secret?.secretName, values.auth.existingSecret ?? 'pool-azure-pipelines-agent-auth', where);
        assert.deepEqual(
          volume?.secret?.items?.map((item) => `${mount?.mountPath}/${item.path}`),
          [secretFile],
          `${where}: only the secret file the agent reads is mounted`,
        );
      }
    }
  });

  void it('grants rbac.rules only in the deployTargets namespaces, without wildcards, and cluster-wide only when asked', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      const roles = objects.filter((object) => object.kind === 'Role');
      const bindings = objects.filter((object) => object.kind === 'RoleBinding');
      const clusterRoles = objects.filter((object) => object.kind === 'ClusterRole');
      const clusterBindings = objects.filter((object) => object.kind === 'ClusterRoleBinding');
      const granted = values.clusterWide ? clusterRoles : roles;
      if (values.clusterWide) {
        assert.equal(roles.length + bindings.length, 0, file);
        assert.equal(clusterRoles.length, 1, file);
        assert.equal(clusterBindings.length, 1, file);
      } else {
        assert.equal(clusterRoles.length + clusterBindings.length, 0, `${file}: cluster-wide RBAC without clusterWide`);
        assert.deepEqual(roles.map((role) => role.metadata.namespace).sort(), [...(values.deployTargets ?? [])].sort(), file);
        assert.deepEqual(bindings.map((binding) => binding.metadata.namespace).sort(), [...(values.deployTargets ?? [])].sort(), file);
      }
      for (const role of granted) {
        for (const rule of role.rules as PolicyRule[]) {
          for (const field of [rule.apiGroups, rule.resources, rule.verbs]) assert.ok(!field.includes('*'), `${file}: wildcard in ${JSON.stringify(rule)}`);
        }
      }
      const serviceAccount = findObject(objects, 'ServiceAccount');
      for (const binding of [...bindings, ...clusterBindings]) {
        assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount.metadata.name, namespace: 'agents' }], file);
        const roleRef = binding.roleRef as { kind: string; name: string };
        assert.ok(granted.some((role) => role.metadata.name === roleRef.name && role.kind === roleRef.kind && role.metadata.namespace === binding.metadata.namespace), `${file}: ${roleRef.name}`);
      }
    }
  });

  void it('creates the persistent agents as a StatefulSet per profile, each pod under exactly one PodDisruptionBudget', () => {
    for (const [file, { values, objects }] of eachScenario().filter(([, { values }]) => values.mode === 'persistent')) {
      const statefulSets = objects.filter((object) => object.kind === 'StatefulSet' && !isBuilderObject(object));
      const budgets = objects.filter((object) => object.kind === 'PodDisruptionBudget').map((budget) => budget.spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } });
      const profiles = values.profiles ?? [{ name: 'default' }];
      assert.equal(statefulSets.length, profiles.length, file);
      for (const profile of profiles) {
        const statefulSet = findObject(objects, 'StatefulSet', (object) => profileOf(object) === profile.name);
        const spec = statefulSet.spec as { replicas: number; selector: { matchLabels: Record<string, string> }; template: PodTemplate };
        assert.equal(spec.replicas, profile.maxReplicas ?? values.persistent?.replicas ?? 2, file);
        assert.equal(envValue(agentContainer(spec.template), 'AZP_MODE'), 'persistent', file);
        assert.equal(agentContainer(spec.template).env?.find((variable) => variable.name === 'AZP_AGENT_NAME')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', file);
        assert.ok(labelsMatch(spec.selector.matchLabels, spec.template.metadata.labels), `${file}: ${statefulSet.metadata.name} does not select its own pods`);
        const covering = budgets.filter((budget) => labelsMatch(budget.selector.matchLabels, spec.template.metadata.labels));
        assert.equal(covering.length, 1, `${file}: ${statefulSet.metadata.name}'s pods fall under ${covering.length} budgets (the eviction API refuses more than one)`);
        assert.equal(covering[0]?.maxUnavailable, 1, file);
        // Another profile's StatefulSet may match these pods (the default profile keeps its old selector),
        // but only through the selector: ownership decides, and every other profile's selector is narrower.
        for (const other of statefulSets.filter((candidate) => candidate !== statefulSet && profileOf(candidate) !== 'default')) {
          assert.ok(!labelsMatch((other.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, spec.template.metadata.labels), `${file}: ${other.metadata.name} selects ${statefulSet.metadata.name}'s pods`);
        }
      }
      assert.ok(!objects.some((object) => object.kind === 'ScaledJob'), file);
    }
  });

  void it('wires the ScaledJob trigger to the pool, the agent URL, the placeholder hook and its authentication', () => {
    for (const [file, { values, objects }] of eachScenario().filter(([, { values }]) => values.mode === 'scaledJob')) {
      const scaledJob = findObject(objects, 'ScaledJob', (object) => profileOf(object) === 'default').spec as ScaledJobSpec;
      const [trigger] = scaledJob.triggers;
      assert.equal(scaledJob.triggers.length, 1, file);
      assert.equal(trigger?.type, 'azure-pipelines', file);
      assert.equal(trigger?.metadata.poolName, values.azp.pool, file);
      assert.equal(trigger?.metadata.fetchUnfinishedJobsOnly, 'true', file);
      assert.equal(trigger?.metadata.targetPipelinesQueueLength, '1', file);
      const agent = agentContainer(scaledJob.jobTargetRef.template);
      assert.equal(envValue(agent, trigger?.metadata.organizationURLFromEnv ?? 'organizationURLFromEnv unset'), values.azp.url, file);
      assert.equal(envValue(agent, 'AZP_MODE'), 'ephemeral', file);
      assert.equal(scaledJob.jobTargetRef.template.spec.restartPolicy, 'Never', file);
      assert.deepEqual([scaledJob.jobTargetRef.parallelism, scaledJob.jobTargetRef.completions, scaledJob.jobTargetRef.backoffLimit], [1, 1, 0], file);
      assert.equal(scaledJob.rollout.strategy, 'gradual', `${file}: an upgrade must not delete running agent Jobs`);

      const placeholderJob = findObject(objects, 'Job', (job) => job.metadata.labels?.['app.kubernetes.io/component'] === 'placeholder' && profileOf(job) === 'default');
      assert.deepEqual(placeholderJob.metadata.annotations?.['helm.sh/hook']?.split(','), ['post-install', 'post-upgrade'], file);
      const placeholderPod = (placeholderJob.spec as { template: PodTemplate }).template;
      assert.equal(placeholderPod.spec.automountServiceAccountToken, false, `${file}: the placeholder only registers and needs no API access`);
      const placeholder = agentContainer(placeholderPod);
      assert.equal(envValue(placeholder, 'AZP_MODE'), 'placeholder', file);
      assert.equal(envValue(placeholder, 'AZP_AGENT_NAME'), trigger?.metadata.parent, `${file}: the trigger's parent is the agent the hook registers`);
      assert.equal(envValue(placeholder, 'AZP_POOL'), values.azp.pool, file);

      const authentication = findObject(objects, 'TriggerAuthentication', (object) => object.metadata.name === trigger?.authenticationRef.name).spec as {
        podIdentity?: { provider: string; identityId: string; identityTenantId: string };
        secretTargetRef?: { parameter: string; name: string; key: string }[];
      };
      if (values.auth.workloadIdentity) {
        assert.deepEqual(authentication, { podIdentity: { provider: 'azure-workload', identityId: values.auth.workloadIdentity.clientId, identityTenantId: values.auth.workloadIdentity.tenantId } }, file);
        const serviceAccount = findObject(objects, 'ServiceAccount');
        assert.equal(serviceAccount.metadata.annotations?.['azure.workload.identity/client-id'], values.auth.workloadIdentity.clientId, file);
        assert.equal(serviceAccount.metadata.annotations?.['azure.workload.identity/tenant-id'], values.auth.workloadIdentity.tenantId, file);
      } else {
        const secretName = values.auth.existingSecret ?? findObject(objects, 'Secret').metadata.name;
        assert.deepEqual(authentication, { secretTargetRef: [{ parameter: 'personalAccessToken', name: secretName, key: 'pat' }] }, file);
      }
    }
  });

  void it('matches the scaling strategy to the KEDA version', async () => {
    const strategies: Record<string, string> = {};
    for (const version of ['2.18.0', '2.19.3', '2.20.0', '2.21.0']) {
      const values = await helm.valuesFile({ ...VALID_BASE, mode: 'scaledJob', keda: { version } });
      const spec = findObject(await helm.render([values]), 'ScaledJob').spec as ScaledJobSpec;
      strategies[version] = spec.scalingStrategy.strategy;
    }
    assert.deepEqual(strategies, { '2.18.0': 'default', '2.19.3': 'default', '2.20.0': 'accurate', '2.21.0': 'accurate' });
  });

  void it('allows no ingress, and egress only to DNS, the CIDRs in values and the builder', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      const policies = objects.filter((object) => object.kind === 'NetworkPolicy' && !isBuilderObject(object));
      if (values.networkPolicy?.enabled === false) {
        assert.equal(policies.length, 0, file);
        continue;
      }
      const spec = policies[0]?.spec as NetworkPolicySpec;
      assert.equal(policies.length, 1, file);
      assert.deepEqual(spec.policyTypes.sort(), ['Egress', 'Ingress'], file);
      assert.equal(spec.ingress, undefined, file);
      const selected = spec.podSelector.matchLabels;
      for (const { template } of podTemplates(objects)) {
        for (const [key, value] of Object.entries(selected)) assert.equal(template.metadata.labels?.[key], value, `${file}: a pod outside the policy`);
      }
      const raw = values as unknown as { networkPolicy: Record<string, { cidrs?: string[] }> };
      const allowedCidrs = new Set(['apiServer', 'registry', 'azureDevOps', 'proxy'].flatMap((name) => raw.networkPolicy[name]?.cidrs ?? []));
      for (const rule of spec.egress) {
        assert.ok(rule.to && rule.to.length > 0, `${file}: an egress rule without destinations allows everything`);
        assert.ok(rule.ports && rule.ports.length > 0, `${file}: an egress rule without ports allows every port`);
        for (const peer of rule.to) {
          if (peer.ipBlock) {
            assert.ok(allowedCidrs.has(peer.ipBlock.cidr), `${file}: ${peer.ipBlock.cidr} is not in values`);
          } else if (values.builder?.enabled && peer.podSelector?.matchLabels['app.kubernetes.io/component'] === 'builder') {
            const builderNamespace = values.builder.namespace || 'agents-buildkit';
            assert.deepEqual(peer, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': builderNamespace } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'azure-pipelines-agent', 'app.kubernetes.io/instance': 'pool', 'app.kubernetes.io/component': 'builder' } } }, file);
            assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: 1234 }], file);
          } else {
            assert.deepEqual(peer, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }, file);
            assert.deepEqual(rule.ports.map((port) => port.port), [53, 53], file);
          }
        }
      }
      const renderedCidrs = spec.egress.flatMap((rule) => (rule.to ?? []).flatMap((peer) => (peer.ipBlock ? [peer.ipBlock.cidr] : [])));
      assert.deepEqual(new Set(renderedCidrs), allowedCidrs, `${file}: every CIDR in values is allowed`);
    }
  });

  void it('passes CA bundle, proxy, scheduling and extra env and volumes through to the agent pods', () => {
    const { objects } = rendered.get('persistent-service-principal-values.yaml') ?? assert.fail('scenario missing');
    const template = (findObject(objects, 'StatefulSet').spec as { template: PodTemplate }).template;
    const agent = agentContainer(template);
    assert.equal(envValue(agent, 'AZP_PROXY_URL'), 'http://proxy.corp.example:3128');
    const caFile = envValue(agent, 'AZP_CA_CERT_FILE') ?? assert.fail('AZP_CA_CERT_FILE unset');
    const caMount = agent.volumeMounts?.find((mount) => caFile.startsWith(`${mount.mountPath}/`));
    const caConfigMap = findObject(objects, 'ConfigMap');
    assert.equal(template.spec.volumes?.find((volume) => volume.name === caMount?.name)?.configMap?.name, caConfigMap.metadata.name);
    assert.match((caConfigMap.data as Record<string, string>)[caFile.split('/').pop() ?? ''] ?? '', /^-----BEGIN CERTIFICATE-----/);
    assert.equal(template.spec.terminationGracePeriodSeconds, 900);
    assert.deepEqual(template.spec.nodeSelector, { agentpool: 'builds' });
    assert.equal((template.spec.tolerations as { key: string }[])[0]?.key, 'dedicated');
    assert.equal((template.spec.topologySpreadConstraints as { topologyKey: string }[])[0]?.topologyKey, 'topology.kubernetes.io/zone');
    assert.equal(envValue(agent, 'BUILD_CACHE_DIR'), '/cache');
    assert.ok(agent.volumeMounts?.some((mount) => mount.name === 'cache' && mount.mountPath === '/cache'));
    assert.match(agent.image, /@sha256:[0-9a-f]{64}$/);
  });

  void it('refuses values that make no sense, saying what to set', async () => {
    const cases: { name: string; values: Record<string, unknown>; message: RegExp }[] = [
      { name: 'scaledJob without a pool', values: { mode: 'scaledJob', azp: { url: 'https://dev.azure.com/contoso', pool: '' } }, message: /mode=scaledJob needs azp\.pool: set it/ },
      { name: 'no deploy targets, not cluster-wide', values: { deployTargets: [] }, message: /deployTargets is empty: list the namespaces .* or set clusterWide=true/ },
      { name: 'no authentication', values: { auth: {} }, message: /no authentication configured: set auth\.workloadIdentity\.clientId .* or auth\.existingSecret/ },
      { name: 'grace period shorter than the drain timeout', values: { drainTimeoutSeconds: 600, terminationGracePeriodSeconds: 300 }, message: /terminationGracePeriodSeconds=300 is shorter than drainTimeoutSeconds \(600\) .* set it to at least 660/ },
      { name: 'grace period without room to deregister', values: { drainTimeoutSeconds: 600, terminationGracePeriodSeconds: 610 }, message: /set it to at least 660/ },
      { name: 'a wildcard verb', values: { rbac: { extraRules: [{ apiGroups: [''], resources: ['pods'], verbs: ['*'] }] } }, message: /rbac rule 7 .* uses a wildcard: name the verbs/ },
      { name: 'a KEDA version before fetchUnfinishedJobsOnly', values: { mode: 'scaledJob', keda: { version: '2.17.2' } }, message: /keda\.version=2\.17\.2 is outside .* set keda\.version/ },
      { name: 'a service principal KEDA cannot use', values: { mode: 'scaledJob', auth: { existingSecret: 'sp', secretType: 'servicePrincipal' } }, message: /set keda\.workloadIdentity\.clientId/ },
      { name: 'workload identity without a tenant', values: { auth: { workloadIdentity: { clientId: '6f1c2d3e-4a5b-4c6d-8e7f-9a0b1c2d3e4f' } } }, message: /auth\.workloadIdentity\.tenantId is empty/ },
      { name: 'a proxy URL with credentials', values: { proxy: { url: 'http://user:secret@proxy:3128' } }, message: /at '\/proxy\/url': 'http:\/\/user:secret@proxy:3128' does not match/ },
      { name: 'a network policy that blocks the API server', values: { networkPolicy: { azureDevOps: { cidrs: ['13.107.6.0/24'] } } }, message: /networkPolicy\.apiServer\.cidrs is empty: set/ },
      { name: 'an unknown mode', values: { mode: 'daemonSet' }, message: /at '\/mode': value must be one of 'persistent', 'scaledJob'/ },
    ];
    for (const { name, values, message } of cases) {
      const file = await helm.valuesFile({ ...VALID_BASE, ...values });
      const stderr = await helmFailure(helm.render([file]));
      assert.match(stderr, message, name);
    }
    // The base the cases start from is valid: each failure comes from its own change.
    await helm.render([await helm.valuesFile(VALID_BASE)]);
  });
  void it('keeps the object names of a release without profiles, for its implicit default profile', () => {
    const { objects } = rendered.get('scaledjob-workload-identity-values.yaml') ?? assert.fail('scenario missing');
    assert.deepEqual(objects.filter((object) => ['ScaledJob', 'Job', 'TriggerAuthentication'].includes(object.kind)).map((object) => `${object.kind}/${object.metadata.name}`).sort(), [
      'Job/pool-azure-pipelines-agent-placeholder',
      'ScaledJob/pool-azure-pipelines-agent',
      'TriggerAuthentication/pool-azure-pipelines-agent',
    ]);
    const persistent = rendered.get('persistent-pat-values.yaml') ?? assert.fail('scenario missing');
    assert.deepEqual(persistent.objects.filter((object) => ['StatefulSet', 'PodDisruptionBudget'].includes(object.kind)).map((object) => `${object.kind}/${object.metadata.name}`).sort(), [
      'PodDisruptionBudget/pool-azure-pipelines-agent',
      'StatefulSet/pool-azure-pipelines-agent',
    ]);
  });

  void it('gives each profile its ScaledJob and placeholder, with its capabilities, resources, scheduling, image and replicas', () => {
    const { values, objects } = rendered.get('scaledjob-profiles-values.yaml') ?? assert.fail('scenario missing');
    const profiles = values.profiles ?? assert.fail('no profiles');
    assert.equal(objects.filter((object) => object.kind === 'ScaledJob').length, profiles.length);
    for (const profile of profiles) {
      const objectName = profile.name === 'default' ? 'pool-azure-pipelines-agent' : `pool-azure-pipelines-agent-${profile.name}`;
      const scaledJob = findObject(objects, 'ScaledJob', (object) => object.metadata.name === objectName);
      assert.equal(profileOf(scaledJob), profile.name);
      const spec = scaledJob.spec as ScaledJobSpec & { maxReplicaCount: number };
      assert.equal(spec.maxReplicaCount, profile.maxReplicas);
      const agent = agentContainer(spec.jobTargetRef.template);
      const placeholderJob = findObject(objects, 'Job', (job) => job.metadata.name === `${objectName}-placeholder`);
      const placeholder = agentContainer((placeholderJob.spec as { template: PodTemplate }).template);
      assert.equal(envValue(placeholder, 'AZP_AGENT_NAME'), `${objectName}-placeholder`);
      // The placeholder reports the capabilities the profile's agents report: Azure DevOps queues
      // against it exactly the jobs those agents can take.
      for (const [name, value] of Object.entries(profile.capabilities ?? {})) {
        assert.equal(envValue(agent, name), value, `${profile.name}: ${name}`);
        assert.equal(envValue(placeholder, name), value, `${profile.name}: placeholder ${name}`);
      }
      assert.deepEqual(agent.resources, profile.resources ?? { requests: { cpu: '500m', memory: '1Gi' }, limits: { memory: '4Gi' } }, profile.name);
      const pod = spec.jobTargetRef.template.spec;
      assert.deepEqual(pod.nodeSelector, profile.nodeSelector, profile.name);
      assert.deepEqual(pod.tolerations, profile.tolerations, profile.name);
      assert.equal(agent.image, `contoso.azurecr.io/azure-pipelines-agent:${profile.image?.tag ?? '4.264.2'}`, profile.name);
      assert.equal(placeholder.image, agent.image, profile.name);
      assert.equal(spec.jobTargetRef.template.metadata.labels?.['azure-pipelines-agent/profile'], profile.name);
    }
  });

  void it('matches jobs to profiles as KEDA reads the trigger: demands with requireAllDemands, parent for the catch-all only', () => {
    const { values, objects } = rendered.get('scaledjob-profiles-values.yaml') ?? assert.fail('scenario missing');
    for (const profile of values.profiles ?? []) {
      const scaledJob = findObject(objects, 'ScaledJob', (object) => profileOf(object) === profile.name).spec as ScaledJobSpec;
      const { metadata } = scaledJob.triggers[0] ?? assert.fail('no trigger');
      if (profile.demands?.length) {
        // With `parent` set KEDA would ignore the demands, so it must be absent.
        assert.deepEqual(
          [metadata.parent, metadata.demands, metadata.requireAllDemands, metadata.caseInsensitiveDemandsProcessing],
          [undefined, profile.demands.join(','), 'true', 'true'],
          profile.name,
        );
      } else {
        // Without `parent` and `demands` KEDA counts every job of the pool: the catch-all names its placeholder.
        assert.equal(metadata.parent, 'pool-azure-pipelines-agent-placeholder', profile.name);
        assert.equal(metadata.demands, undefined, profile.name);
      }
      assert.equal(metadata.fetchUnfinishedJobsOnly, 'true', profile.name);
    }
  });

  void it('stops ephemeral agents after scaledJob.idleTimeoutSeconds without a job, and never long-lived ones', async () => {
    const { values, objects } = rendered.get('scaledjob-profiles-values.yaml') ?? assert.fail('scenario missing');
    for (const { owner, template } of agentPodTemplates(objects)) {
      const expected = owner.kind === 'ScaledJob' ? String(values.scaledJob?.idleTimeoutSeconds) : undefined;
      assert.equal(envValue(agentContainer(template), 'AZP_IDLE_TIMEOUT_SECONDS'), expected, `${owner.kind}/${owner.metadata.name}`);
    }
    const defaults = rendered.get('scaledjob-workload-identity-values.yaml') ?? assert.fail('scenario missing');
    assert.equal(envValue(agentContainer((findObject(defaults.objects, 'ScaledJob').spec as ScaledJobSpec).jobTargetRef.template), 'AZP_IDLE_TIMEOUT_SECONDS'), '900');
    const off = await helm.render([await helm.valuesFile({ ...VALID_BASE, mode: 'scaledJob', scaledJob: { idleTimeoutSeconds: 0 } })]);
    assert.equal(envValue(agentContainer((findObject(off, 'ScaledJob').spec as ScaledJobSpec).jobTargetRef.template), 'AZP_IDLE_TIMEOUT_SECONDS'), undefined);
    for (const { template } of agentPodTemplates((rendered.get('persistent-profiles-values.yaml') ?? assert.fail('scenario missing')).objects)) {
      assert.equal(envValue(agentContainer(template), 'AZP_IDLE_TIMEOUT_SECONDS'), undefined);
    }
  });

  void it('runs the cleanup CronJob with the agents\' authentication, keeping every placeholder of the release', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      const cronJobs = objects.filter((object) => object.kind === 'CronJob');
      assert.equal(cronJobs.length, values.cleanup?.enabled ? 1 : 0, file);
      if (!values.cleanup?.enabled) continue;
      const template = podTemplates(cronJobs)[0]?.template ?? assert.fail('no pod template');
      const [container] = template.spec.containers;
      const env = envMap(container);
      assert.equal(env.AZP_MODE, 'cleanup', file);
      assert.equal(env.AZP_CLEANUP_OFFLINE_MINUTES, String(values.cleanup.offlineMinutes ?? 60), file);
      const placeholders = objects.filter((object) => object.kind === 'Job').map((job) => envValue(agentContainer((job.spec as { template: PodTemplate }).template), 'AZP_AGENT_NAME'));
      assert.deepEqual(env.AZP_PLACEHOLDER_AGENTS?.split(',') ?? [], [...placeholders, ...(values.cleanup.keepAgents ?? [])], file);
      assert.equal(template.spec.automountServiceAccountToken, false, file);
      assert.ok(!(template.spec.initContainers ?? []).length, `${file}: cleanup runs no agent and copies none`);
      if (values.auth.workloadIdentity) {
        assert.equal(env.AZP_AUTH, 'workload-identity', file);
        assert.equal(template.metadata.labels?.['azure.workload.identity/use'], 'true', file);
        assert.ok(!(template.spec.volumes ?? []).some((volume) => volume.secret), `${file}: a secret with workload identity`);
        assert.ok(!(container.env ?? []).some((variable) => variable.valueFrom?.secretKeyRef), file);
      }
    }
  });

  void it('points the package caches into caches.volume for the agents, and keeps them out of placeholders and cleanup', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      for (const { owner, template } of podTemplates(objects).filter(({ owner }) => owner.kind !== 'Pod')) {
        const runsJobs = owner.kind === 'StatefulSet' || owner.kind === 'ScaledJob';
        const [container] = template.spec.containers;
        const env = envMap(container);
        const cacheVolume = template.spec.volumes?.find((volume) => volume.name === 'caches');
        if (!values.caches?.volume || !runsJobs) {
          assert.equal(cacheVolume, undefined, `${file}: ${owner.kind}/${owner.metadata.name}`);
          assert.equal(env.npm_config_cache, undefined, `${file}: ${owner.kind}/${owner.metadata.name}`);
          continue;
        }
        const source: Record<string, unknown> = { ...(cacheVolume ?? assert.fail(`${file}: no cache volume`)) };
        delete source.name;
        assert.deepEqual(source, values.caches.volume, file);
        const mount = container.volumeMounts?.find((candidate) => candidate.name === 'caches');
        assert.equal(mount?.mountPath, '/azp/cache', file);
        assert.deepEqual(
          [env.npm_config_cache, env.NUGET_PACKAGES, env.MAVEN_OPTS, env.PIP_CACHE_DIR, env.GOMODCACHE, env.GOCACHE, env.AGENT_TOOLSDIRECTORY],
          ['/azp/cache/npm', '/azp/cache/nuget/packages', '-Dmaven.repo.local=/azp/cache/maven/repository', '/azp/cache/pip', '/azp/cache/go/mod', '/azp/cache/go/build', '/azp/cache/tools'],
          file,
        );
      }
    }
  });

  void it('keeps each persistent agent\'s work folder on a claim of the configured class and size', () => {
    const { objects } = rendered.get('persistent-profiles-values.yaml') ?? assert.fail('scenario missing');
    for (const statefulSet of objects.filter((object) => object.kind === 'StatefulSet')) {
      const claims = (statefulSet.spec as { volumeClaimTemplates: { metadata: { name: string }; spec: { storageClassName?: string; resources: { requests: { storage: string } } } }[] }).volumeClaimTemplates;
      assert.deepEqual(claims.map((claim) => [claim.metadata.name, claim.spec.storageClassName, claim.spec.resources.requests.storage]), [['work', 'managed-csi-premium', '100Gi']], statefulSet.metadata.name);
    }
  });

  void it('refuses profiles that would let a job reach two profiles, or none, saying what to change', async () => {
    const builds = { name: 'builds', capabilities: { 'agent.profile': 'builds' }, demands: ['agent.profile -equals builds'] };
    const scaled = { ...VALID_BASE, mode: 'scaledJob' };
    const cases: { name: string; values: Record<string, unknown>; message: RegExp }[] = [
      { name: 'two profiles of one name', values: { ...scaled, profiles: [{ name: 'default' }, builds, { ...builds, demands: ['agent.profile'] }] }, message: /profiles\[2\] \(builds\): another profile has the name builds/ },
      { name: 'two catch-alls', values: { ...scaled, profiles: [{ name: 'default' }, { name: 'small' }] }, message: /profiles\[0\] \(default\) and profiles\[1\] \(small\) both have no demands: KEDA would start an agent of each/ },
      {
        name: 'the same demands in another order and case',
        values: { ...scaled, profiles: [{ name: 'a', capabilities: { x: '1', y: '2' }, demands: ['x', 'y -equals 2'] }, { name: 'b', capabilities: { X: '1', Y: '2' }, demands: ['Y -equals 2', 'X'] }] },
        message: /profiles\[0\] \(a\) and profiles\[1\] \(b\) have the same demands \(x,y -equals 2\): KEDA would start an agent of each/,
      },
      {
        name: 'a catch-all whose placeholder satisfies another profile',
        values: { ...scaled, profiles: [{ name: 'default', capabilities: { 'agent.profile': 'builds' } }, builds] },
        message: /profiles\[0\] \(default\) takes the jobs without demands, and its placeholder also satisfies every demand of profiles\[1\] \(builds\)/,
      },
      {
        name: 'demands only on the agent\'s own capabilities',
        values: { ...scaled, profiles: [{ name: 'default' }, { name: 'linux', demands: ['Agent.OS -equals Linux'] }] },
        message: /its placeholder also satisfies every demand of profiles\[1\] \(linux\)/,
      },
      { name: 'a demand the profile cannot satisfy', values: { ...scaled, profiles: [{ name: 'gpu', demands: ['gpu'] }] }, message: /profiles\[0\] \(gpu\): demand "gpu" names no capability of the profile: add gpu to profiles\[0\] \(gpu\)\.capabilities/ },
      { name: 'an -equals demand on another value', values: { ...scaled, profiles: [{ ...builds, demands: ['agent.profile -equals build'] }] }, message: /demand "agent\.profile -equals build" does not match the profile's capability agent\.profile=builds/ },
      { name: 'an Agent.Version demand', values: { ...scaled, profiles: [{ ...builds, demands: ['agent.profile', 'Agent.Version -gtVersion 4.0.0'] }] }, message: /KEDA ignores Agent\.Version demands/ },
      { name: 'a capability the chart sets', values: { profiles: [{ name: 'x', capabilities: { AZP_POOL: 'other' } }] }, message: /capability AZP_POOL is a variable the chart, the agent or workload identity sets/ },
      { name: 'a comma in a demand', values: { profiles: [{ name: 'x', capabilities: { a: '1' }, demands: ['a,b'] }] }, message: /at '\/profiles\/0\/demands\/0'/ },
      { name: 'a profile name too long for its objects', values: { profiles: [{ name: 'a-profile-name-of-thirty-chars' }] }, message: /would be named pool-azure-pipelines-agent-a-profile-name-of-thirty-chars, longer than 52 characters/ },
      { name: 'an unknown profile field', values: { profiles: [{ name: 'x', demand: ['y'] }] }, message: /at '\/profiles\/0': additional properties 'demand' not allowed/ },
      { name: 'a misspelt top-level value', values: { profile: [builds] }, message: /additional properties 'profile' not allowed/ },
      { name: 'a host path as the cache volume', values: { caches: { volume: { hostPath: { path: '/var/cache' } } } }, message: /at '\/caches\/volume': additional properties 'hostPath' not allowed/ },
      { name: 'a cache folder over the work folder', values: { caches: { volume: { emptyDir: {} }, mountPath: '/azp/_work/cache' } }, message: /caches\.mountPath=\/azp\/_work\/cache overlaps \/azp\/_work/ },
    ];
    for (const { name, values, message } of cases) {
      const stderr = await helmFailure(helm.render([await helm.valuesFile({ ...VALID_BASE, ...values })]));
      assert.match(stderr, message, name);
    }
    // Valid: a catch-all, and profiles on capabilities it lacks, in either mode; `global` from a parent chart.
    for (const mode of ['scaledJob', 'persistent']) {
      await helm.render([await helm.valuesFile({ ...VALID_BASE, mode, global: { imageRegistry: 'x' }, profiles: [{ name: 'default' }, builds, { name: 'linux', capabilities: { 'agent.kind': 'linux' }, demands: ['agent.kind -equals Linux', 'Agent.OS -equals Linux'] }] })]);
    }
  });
  void it('documents every value of values.yaml, and every profile field, in the chart README\'s tables', async () => {
    const readme = await readFile(path.join(CHART_DIR, 'README.md'), 'utf8');
    const documented = documentedValues(readme);
    const values = parse(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const missing = valuePaths(values).filter((name) => !documented.has(name));
    assert.deepEqual(missing, [], 'values missing from the README tables');
    const schema = JSON.parse(await readFile(path.join(CHART_DIR, 'values.schema.json'), 'utf8')) as { properties: { profiles: { items: { properties: Record<string, unknown> } } } };
    const profileFields = Object.keys(schema.properties.profiles.items.properties).map((field) => `profiles[].${field}`);
    assert.deepEqual(profileFields.filter((name) => !documented.has(name)), [], 'profile fields missing from the README');
    const unknown = [...documented].filter((name) => !name.startsWith('profiles[].') && !valuePaths(values).some((value) => value === name || value.startsWith(`${name}.`)));
    assert.deepEqual(unknown, [], 'the README documents values that do not exist');
  });

  void it('defaults builder.image to the rootless BuildKit image agent-image/versions.env pins', async () => {
    const defaults = parse(await readFile(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as { builder: { image: { repository: string; tag: string; digest: string } } };
    const pinned = /^BUILDKIT_ROOTLESS_IMAGE=(.+)$/m.exec(await readFile(path.join(CHART_DIR, '..', '..', 'agent-image', 'versions.env'), 'utf8'))?.[1];
    const { repository, tag, digest } = defaults.builder.image;
    assert.equal(`${repository}:${tag}@${digest}`, pinned);
    const buildctlVersion = /^BUILDKIT_VERSION=(.+)$/m.exec(await readFile(path.join(CHART_DIR, '..', '..', 'agent-image', 'versions.env'), 'utf8'))?.[1];
    assert.equal(tag, `${buildctlVersion}-rootless`, "the builder runs the version of the agents' buildctl");
  });

  void it('renders no builder, and gives the agents nothing of it, unless builder.enabled', () => {
    for (const [file, { values, objects }] of eachScenario()) {
      if (values.builder?.enabled) continue;
      assert.deepEqual(objects.filter(isBuilderObject), [], file);
      assert.ok(!objects.some((object) => object.kind === 'Namespace' || (object.metadata.namespace && !['agents', ...(values.deployTargets ?? [])].includes(object.metadata.namespace))), file);
      for (const { template } of agentPodTemplates(objects)) {
        assert.equal(envValue(agentContainer(template), 'BUILDKIT_HOST'), undefined, file);
        assert.ok(!(template.spec.volumes ?? []).some((volume) => volume.name === 'buildkit-client'), file);
      }
    }
  });

  void it('puts the builder in a namespace of its own labelled privileged, as rootless BuildKit pinned by digest, with Unconfined seccomp and AppArmor, a claim per replica and the RuntimeClass', () => {
    const { values, objects } = rendered.get('builder-values.yaml') ?? assert.fail('scenario missing');
    const builder = objects.filter(isBuilderObject);
    assert.deepEqual(builder.map((object) => `${object.kind}/${object.metadata.namespace ?? ''}`).sort(), ['ConfigMap/agents-buildkit', 'Namespace/', 'NetworkPolicy/agents-buildkit', 'Secret/agents-buildkit', 'Service/agents-buildkit', 'StatefulSet/agents-buildkit']);
    const namespace = findObject(objects, 'Namespace');
    assert.equal(namespace.metadata.name, 'agents-buildkit');
    assert.deepEqual(
      ['enforce', 'warn', 'audit'].map((mode) => namespace.metadata.labels?.[`pod-security.kubernetes.io/${mode}`]),
      ['privileged', 'baseline', 'baseline'],
    );
    const statefulSet = findObject(builder, 'StatefulSet');
    const spec = statefulSet.spec as { replicas: number; serviceName: string; selector: { matchLabels: Record<string, string> }; template: PodTemplate; volumeClaimTemplates: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[] };
    assert.equal(spec.replicas, values.builder?.replicas);
    assert.ok(labelsMatch(spec.selector.matchLabels, spec.template.metadata.labels));
    const pod = spec.template.spec;
    assert.equal(pod.runtimeClassName, 'kata-vm-isolation');
    assert.equal(pod.automountServiceAccountToken, false);
    assert.ok(!pod.hostNetwork && !pod.hostPID && !(pod.volumes ?? []).some((volume) => volume.hostPath));
    const [daemon] = pod.containers;
    assert.equal(daemon.image, 'docker.io/moby/buildkit:v0.33.1-rootless@sha256:f8a833b2de9d68e27f0815e4a737abdfaf8a2e4c615650557df11025101557b4');
    assert.ok(daemon.args?.includes('--oci-worker-no-process-sandbox'));
    assert.deepEqual(daemon.args?.slice(daemon.args.indexOf('--tlscacert'), daemon.args.indexOf('--tlscacert') + 6), ['--tlscacert', '/certs/ca.crt', '--tlscert', '/certs/tls.crt', '--tlskey', '/certs/tls.key'], 'a CA given: client certificates are required');
    assert.ok(daemon.args?.includes('tcp://0.0.0.0:1234'));
    assert.deepEqual([daemon.securityContext?.runAsUser, daemon.securityContext?.seccompProfile?.type, daemon.securityContext?.appArmorProfile?.type], [1000, 'Unconfined', 'Unconfined']);
    assert.ok(!daemon.securityContext?.privileged && !daemon.securityContext?.capabilities?.add, 'rootless: no privileges, no added capabilities');
    assert.deepEqual(daemon.resources, { requests: { cpu: '1', memory: '2Gi' }, limits: { memory: '8Gi' } });
    assert.deepEqual(spec.volumeClaimTemplates.map((claim) => [claim.metadata.name, claim.spec.resources.requests.storage]), [['state', values.builder?.cache?.size]]);
    assert.equal(daemon.volumeMounts?.find((mount) => mount.name === 'state')?.mountPath, '/home/user/.local/share/buildkit');
    const service = findObject(builder, 'Service');
    assert.equal(spec.serviceName, service.metadata.name);
    const serviceSpec = service.spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    assert.ok(labelsMatch(serviceSpec.selector, spec.template.metadata.labels));
    assert.deepEqual(serviceSpec.ports.map((port) => [port.port, port.targetPort]), [[1234, 'buildkitd']]);
    assert.ok(daemon.volumeMounts?.some((mount) => mount.mountPath === '/certs' && mount.readOnly));
  });

  void it('gives the agents the builder\'s address and their client certificate where the build task looks, and nothing to the placeholder but the address', async () => {
    const { objects } = rendered.get('builder-values.yaml') ?? assert.fail('scenario missing');
    const service = findObject(objects.filter(isBuilderObject), 'Service');
    const clientSecret = findObject(objects, 'Secret', (secret) => secret.metadata.namespace === 'agents' && secret.metadata.labels?.['app.kubernetes.io/component'] === 'builder-client');
    const agents = agentPodTemplates(objects);
    assert.ok(agents.length > 0);
    for (const { owner, template } of agents) {
      const agent = agentContainer(template);
      assert.equal(envValue(agent, 'BUILDKIT_HOST'), `tcp://${service.metadata.name}.${service.metadata.namespace}.svc:1234`, owner.metadata.name);
      const mount = agent.volumeMounts?.find((candidate) => candidate.mountPath === '/azp/buildkit');
      assert.equal(mount?.readOnly, true);
      const volume = template.spec.volumes?.find((candidate) => candidate.name === mount?.name);
      assert.equal(volume?.secret?.secretName, clientSecret.metadata.name);
      assert.equal(volume?.secret?.defaultMode, 0o440);
    }
    // The placeholder reports the address as a capability, like its agents, and mounts no certificate.
    const scaled = await helm.render([await helm.valuesFile({ ...VALID_BASE, mode: 'scaledJob', networkPolicy: { ...VALID_BASE.networkPolicy, registry: { cidrs: ['10.1.0.0/28'] } }, builder: { enabled: true } })]);
    const placeholder = (findObject(scaled, 'Job', (job) => job.metadata.labels?.['app.kubernetes.io/component'] === 'placeholder').spec as { template: PodTemplate }).template;
    assert.match(envValue(agentContainer(placeholder), 'BUILDKIT_HOST') ?? '', /^tcp:\/\/pool-azure-pipelines-agent-buildkit\.agents-buildkit\.svc:1234$/);
    assert.ok(!(placeholder.spec.volumes ?? []).some((volume) => volume.secret?.secretName === 'pool-azure-pipelines-agent-buildkit-client'));
    // The task's default folder for the client certificate is where the chart mounts it.
    assert.match(await readFile(path.join(CHART_DIR, '..', '..', 'tasks', 'PrivateAcrBuildImage', 'inputs.ts'), 'utf8'), /const AGENT_BUILDKIT_CERTIFICATES = '\/azp\/buildkit';/);
  });

  void it('admits only the release\'s agent pods to the builder, and lets the builder reach only DNS, the registry and extraEgress', async () => {
    const renders = [
      (rendered.get('builder-values.yaml') ?? assert.fail('scenario missing')).objects,
      await helm.render([await helm.valuesFile({ ...VALID_BASE, mode: 'scaledJob', cleanup: { enabled: true }, networkPolicy: { ...VALID_BASE.networkPolicy, registry: { cidrs: ['10.1.0.0/28'] } }, builder: { enabled: true } })]),
    ];
    for (const objects of renders) {
      const policy = findObject(objects.filter(isBuilderObject), 'NetworkPolicy').spec as NetworkPolicySpec & { ingress: { from: NetworkPolicyPeer[]; ports: { protocol: string; port: number }[] }[] };
      const builderPods = allPodTemplates(objects.filter(isBuilderObject));
      assert.ok(builderPods.every(({ template }) => labelsMatch(policy.podSelector.matchLabels, template.metadata.labels)), 'the policy covers the builder pods');
      assert.equal(policy.ingress.length, 1);
      const [rule] = policy.ingress;
      assert.deepEqual(rule.ports, [{ protocol: 'TCP', port: 1234 }]);
      // Which pods of the release (all in namespace `agents`) the rule admits: exactly those running pipeline jobs.
      const admitted = (labels: Record<string, string> | undefined) => rule.from.some((peer) => peer.namespaceSelector?.matchLabels['kubernetes.io/metadata.name'] === 'agents' && Object.keys(peer.namespaceSelector.matchLabels).length === 1 && labelsMatch(peer.podSelector?.matchLabels ?? {}, labels) && peer.podSelector !== undefined);
      const releasePods = podTemplates(objects);
      assert.ok(releasePods.some(({ owner }) => owner.kind === 'Pod'), 'the helm test pod is among them');
      for (const { owner, template } of releasePods) {
        const runsJobs = owner.kind === 'StatefulSet' || owner.kind === 'ScaledJob';
        assert.equal(admitted(template.metadata.labels), runsJobs, `${owner.kind}/${owner.metadata.name}`);
      }
      assert.equal(admitted({ 'app.kubernetes.io/component': 'agent' }), false, "another release's agents");
      const cidrs = policy.egress.flatMap((egress) => (egress.to ?? []).flatMap((peer) => (peer.ipBlock ? [peer.ipBlock.cidr] : [])));
      assert.ok(policy.egress.every((egress) => egress.to?.length && egress.ports?.length), 'every egress rule names destinations and ports');
      assert.ok(!cidrs.includes('10.224.0.4/32') && !cidrs.some((cidr) => cidr.startsWith('13.107.')), 'the builder reaches neither the API server nor Azure DevOps');
    }
    const scenario = (rendered.get('builder-values.yaml') ?? assert.fail('scenario missing')).objects;
    const policy = findObject(scenario.filter(isBuilderObject), 'NetworkPolicy').spec as NetworkPolicySpec;
    assert.deepEqual(policy.egress.flatMap((egress) => (egress.to ?? []).flatMap((peer) => (peer.ipBlock ? [peer.ipBlock.cidr] : []))), ['10.225.0.0/28', '10.226.0.0/28']);
  });

  void it('makes one CA for both certificates: a real buildkitd with the chart\'s certificate and buildkitd.toml admits the agents\' client certificate and refuses any other', async () => {
    const { objects } = rendered.get('builder-values.yaml') ?? assert.fail('scenario missing');
    const data = (component: string) => {
      const secret = findObject(objects, 'Secret', (candidate) => candidate.metadata.labels?.['app.kubernetes.io/component'] === component);
      assert.equal(secret.type, 'kubernetes.io/tls');
      return Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
    };
    const server = data('builder');
    const client = data('builder-client');
    assert.equal(server['ca.crt'], client['ca.crt']);
    const ca = new X509Certificate(server['ca.crt']);
    const serverCert = new X509Certificate(server['tls.crt']);
    const clientCert = new X509Certificate(client['tls.crt']);
    assert.ok(serverCert.verify(ca.publicKey) && clientCert.verify(ca.publicKey));
    const service = findObject(objects.filter(isBuilderObject), 'Service');
    assert.ok(serverCert.checkHost(`${service.metadata.name}.${service.metadata.namespace}.svc`), serverCert.subjectAltName);
    // The CA's key is kept nowhere: each Secret holds a certificate, its key and the CA's certificate.
    assert.deepEqual([Object.keys(server).sort(), Object.keys(client).sort()], [['ca.crt', 'tls.crt', 'tls.key'], ['ca.crt', 'tls.crt', 'tls.key']]);

    const dir = await mkdtemp(path.join(tmpdir(), 'chart-buildkit-'));
    try {
      const folder = async (name: string, files: Record<string, string>) => {
        await mkdir(path.join(dir, name), { mode: 0o700 });
        for (const [file, content] of Object.entries(files)) await writeFile(path.join(dir, name, file), content, { mode: 0o600 });
        return path.join(dir, name);
      };
      const serverDir = await folder('server', server);
      const clientDir = await folder('client', { 'ca.pem': client['ca.crt'], 'cert.pem': client['tls.crt'], 'key.pem': client['tls.key'] });
      const agents: BuildkitClientCertificates = { dir: clientDir, caFile: path.join(clientDir, 'ca.pem'), certFile: path.join(clientDir, 'cert.pem'), keyFile: path.join(clientDir, 'key.pem') };
      const config = (findObject(objects.filter(isBuilderObject), 'ConfigMap').data as Record<string, string>)['buildkitd.toml'];
      const testCa = await createTestCa(path.join(dir, 'other-ca'));
      // Started and found ready with the agents' certificate, so the chart's config parses and the pair works.
      const daemon = await startBuildkit({
        ca: testCa,
        dir: path.join(dir, 'daemon'),
        server: { caFile: path.join(serverDir, 'ca.crt'), certFile: path.join(serverDir, 'tls.crt'), keyFile: path.join(serverDir, 'tls.key'), serverName: `${service.metadata.name}.${service.metadata.namespace}.svc` },
        client: agents,
        extraConfig: config,
      });
      try {
        assert.match((await daemon.buildctl(['debug', 'workers'])).stdout, /ID\s+PLATFORMS/);
        const stranger = await daemon.issueClient('stranger', testCa);
        await writeFile(stranger.caFile, client['ca.crt']);
        const refused = await runBuildctlAs(daemon.connectionArgs(stranger));
        assert.match(refused, /broken pipe|connection reset by peer|certificate required|bad certificate|unknown certificate authority/);
      } finally {
        await daemon.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  void it('uses existing certificate Secrets instead of making any', async () => {
    const objects = await helm.render([await helm.valuesFile({ ...VALID_BASE, networkPolicy: { ...VALID_BASE.networkPolicy, registry: { cidrs: ['10.1.0.0/28'] } }, builder: { enabled: true, namespace: 'builds', tls: { existingServerSecret: 'buildkitd-tls', existingClientSecret: 'agents-buildkit-tls' } } })]);
    assert.ok(!objects.some((object) => object.kind === 'Secret' && object.metadata.name.includes('buildkit')));
    const pod = (findObject(objects.filter(isBuilderObject), 'StatefulSet').spec as { template: PodTemplate }).template.spec;
    assert.equal(pod.volumes?.find((volume) => volume.name === 'certs')?.secret?.secretName, 'buildkitd-tls');
    for (const { template } of agentPodTemplates(objects)) {
      assert.equal(template.spec.volumes?.find((volume) => volume.name === 'buildkit-client')?.secret?.secretName, 'agents-buildkit-tls');
      assert.equal(envValue(agentContainer(template), 'BUILDKIT_HOST'), 'tcp://pool-azure-pipelines-agent-buildkit.builds.svc:1234');
    }
  });

  void it('refuses a builder where the agents are or may deploy, half a certificate pair, an old cluster, or one that could reach no registry', async () => {
    const builderBase = { ...VALID_BASE, networkPolicy: { ...VALID_BASE.networkPolicy, registry: { cidrs: ['10.1.0.0/28'] } } };
    const cases: { name: string; values: Record<string, unknown>; message: RegExp; kubeVersion?: string }[] = [
      { name: "the agents' namespace", values: { ...builderBase, builder: { enabled: true, namespace: 'agents' } }, message: /builder\.namespace=agents is the agents' namespace: the builder needs Pod Security `privileged`/ },
      { name: 'a deploy target', values: { ...builderBase, deployTargets: ['apps', 'builds'], builder: { enabled: true, namespace: 'builds' } }, message: /the agents may deploy into the builder's namespace builds \(deployTargets\)/ },
      { name: 'clusterWide', values: { ...builderBase, clusterWide: true, builder: { enabled: true } }, message: /the agents may deploy into the builder's namespace agents-buildkit \(clusterWide=true\)/ },
      { name: 'one existing Secret', values: { ...builderBase, builder: { enabled: true, tls: { existingServerSecret: 'x' } } }, message: /builder\.tls: set existingServerSecret and existingClientSecret together/ },
      { name: 'no registry to reach', values: { ...VALID_BASE, builder: { enabled: true } }, message: /builder\.networkPolicy would let the builder reach no registry/ },
      { name: 'an image by tag only', values: { ...builderBase, builder: { enabled: true, image: { digest: '' } } }, message: /at '\/builder\/image\/digest'/ },
      { name: 'a misspelt builder key', values: { ...builderBase, builder: { enabled: true, replica: 2 } }, message: /additional properties 'replica' not allowed/ },
      { name: 'Kubernetes before 1.30', values: { ...builderBase, builder: { enabled: true } }, message: /builder\.enabled needs Kubernetes 1\.30 or later/, kubeVersion: '1.29.0' },
    ];
    for (const { name, values, message, kubeVersion } of cases) {
      const valuesFile = await helm.valuesFile(values);
      const stderr = await helmFailure(kubeVersion ? helm.run(['template', 'pool', CHART_DIR, '--namespace', 'agents', '--kube-version', kubeVersion, '--values', valuesFile]) : helm.render([valuesFile]));
      assert.match(stderr, message, name);
    }
  });
});

/** buildctl's error when it connects with these arguments (it must fail). */
async function runBuildctlAs(connection: string[]): Promise<string> {
  const error = await runTool(BUILDCTL, [...connection, 'debug', 'workers'], { timeoutMs: 20_000 }).then(
    () => undefined,
    (reason: unknown) => reason,
  );
  assert.ok(error instanceof ToolError, 'buildctl connected with a certificate the daemon should refuse');
  return error.stderr;
}
