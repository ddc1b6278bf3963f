// Every scenario of the agent pool chart installed with `helm install` into the real test API
// server: release namespaces enforce Pod Security `restricted`, KEDA's own CRDs (from its Go module,
// scripts/fetch-keda-crds.sh) validate the ScaledJob and TriggerAuthentication strictly, the fake
// kubelet runs the agents and the placeholder hook, and `kubectl auth can-i --as` the agents'
// service account shows they can deploy into their targets and do nothing anywhere else.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { runTool, ToolError } from '../env/processes.js';
import { kubeToolPath, startControlPlane, type ControlPlane } from '../kube/controlPlane.js';
import { startFakeKubelet, type FakeKubelet } from '../kube/fakeKubelet.js';
import { allPodTemplates, CHART_DIR, findObject, Helm, helmFailure, isBuilderObject, podTemplates, scenarioFiles, scenarioPath, scenarioValues, type KubeObject, type ScenarioValues } from './chart.js';

const FETCH_KEDA_CRDS = fileURLToPath(new URL('../../scripts/fetch-keda-crds.sh', import.meta.url));

/** A namespace no scenario deploys into: the agents must have no rights there. */
const UNRELATED_NAMESPACE = 'unrelated';

/** Where the upgrade test installs, per mode. */
const UPGRADE_NAMESPACES = { persistent: 'upgrade-persistent', scaledJob: 'upgrade-scaledjob' } as const;

/** Where the test that installs invalid values tries to. */
const REFUSED_NAMESPACE = 'refused';

/** Where the builder upgrade test installs; the chart puts its builder in `<namespace>-buildkit`. */
const BUILDER_UPGRADE_NAMESPACE = 'builder-upgrade';

interface Scenario {
  file: string;
  values: ScenarioValues;
  release: string;
  namespace: string;
}

/** `kubectl auth can-i` answers yes (exit 0) or no (exit 1); anything else is an error. */
async function canI(cluster: ControlPlane, serviceAccount: string, verb: string, resource: string, namespace?: string): Promise<boolean> {
  const args = ['auth', 'can-i', verb, resource, `--as=${serviceAccount}`, ...(namespace ? [`--namespace=${namespace}`] : [])];
  try {
    return (await cluster.kubectl(args)).trim() === 'yes';
  } catch (error) {
    if (error instanceof ToolError && error.exitCode === 1 && error.stdout.trim() === 'no') return false;
    throw error;
  }
}

/** The Secret a scenario's auth.existingSecret names, with the keys its secretType needs. */
function existingSecret(values: ScenarioValues, namespace: string): Record<string, unknown> | undefined {
  const name = values.auth.existingSecret;
  if (!name) return undefined;
  const stringData = values.auth.secretType === 'servicePrincipal' ? { clientId: '00000000-0000-0000-0000-000000000001', tenantId: 'contoso.onmicrosoft.com', clientSecret: 'test-client-secret' } : { pat: 'test-pat' };
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData };
}

/**
 * A Pod for each rendered pod template, so Pod Security admission judges what controllers would
 * create; a StatefulSet's pods also get a volume per claim template, as its controller adds them.
 */
function templateProbes(objects: KubeObject[], namespace: string): KubeObject[] {
  return podTemplates(objects)
    .filter(({ owner }) => owner.kind !== 'Pod')
    .map(({ owner, template }) => {
      const claims = owner.kind === 'StatefulSet' ? ((owner.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []) : [];
      const claimVolumes = claims.map((claim) => ({ name: claim.metadata.name, persistentVolumeClaim: { claimName: `${claim.metadata.name}-${owner.metadata.name}-0` } }));
      return {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `${owner.metadata.name}-${owner.kind.toLowerCase()}-probe`, namespace, labels: template.metadata.labels, annotations: template.metadata.annotations },
        spec: { restartPolicy: 'Never', ...template.spec, volumes: [...(template.spec.volumes ?? []), ...claimVolumes] },
      };
    });
}

void describe('agent pool chart: helm install into the real API server', () => {
  let dir: string;
  let cluster: ControlPlane;
  let kubelet: FakeKubelet;
  let helm: Helm;
  let scenarios: Scenario[];
  const createdNamespaces = new Set<string>();

  async function ensureNamespace(name: string): Promise<void> {
    if (createdNamespaces.has(name)) return;
    createdNamespaces.add(name);
    await cluster.createNamespace(name, { podSecurity: 'restricted' });
  }

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'agent-pool-install-'));
    const crdDir = (await runTool('bash', [FETCH_KEDA_CRDS], { timeoutMs: 600_000 })).stdout.trim();
    cluster = await startControlPlane({ dir });
    // Server-side: the ScaledJob CRD is too large for client-side apply's last-applied annotation.
    await cluster.kubectl(['apply', '--server-side', `--filename=${crdDir}`]);
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `--filename=${crdDir}`]);

    scenarios = await Promise.all(
      (await scenarioFiles()).map(async (file, index) => ({
        file,
        values: await scenarioValues(file),
        release: file.replace(/-values\.yaml$/, ''),
        namespace: `pool-${index}`,
      })),
    );
    const releaseNamespaces = [...scenarios.map((scenario) => scenario.namespace), ...Object.values(UPGRADE_NAMESPACES), REFUSED_NAMESPACE, BUILDER_UPGRADE_NAMESPACE];
    kubelet = await startFakeKubelet(cluster, { namespaces: [...releaseNamespaces, ...releaseNamespaces.map((namespace) => `${namespace}-buildkit`)] });
    // What AKS Pod Sandboxing adds to a node pool; the builder scenario runs its builders with it.
    await cluster.admin.request('POST', '/apis/node.k8s.io/v1/runtimeclasses', { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'kata-vm-isolation' }, handler: 'kata' });
    helm = await Helm.create(cluster.adminKubeconfigPath);
    await ensureNamespace(UNRELATED_NAMESPACE);
  });

  after(async () => {
    await kubelet?.stop();
    await cluster?.stop();
    await helm?.close();
    await rm(dir, { recursive: true, force: true });
  });

  void it('installs every scenario into namespaces enforcing restricted, and the agents may deploy only where deployTargets says', async () => {
    assert.ok(scenarios.length >= 8, 'expected the eight scenarios under ci/');
    for (const scenario of scenarios) {
      await installAndCheck(scenario);
    }
  });

  /** Phases of the pods a label selector picks. */
  async function runningPhases(namespace: string, selector: string): Promise<string[]> {
    const pods = JSON.parse(await cluster.kubectl(['get', 'pods', `--namespace=${namespace}`, `--selector=${selector}`, '--output=json'])) as { items: { status: { phase: string } }[] };
    return pods.items.map((pod) => pod.status.phase);
  }

  /** `kind/name` → UID of the objects a label selector picks, for comparing before and after an upgrade. */
  async function uids(namespace: string, kinds: string, selector: string): Promise<Map<string, string>> {
    const list = JSON.parse(await cluster.kubectl(['get', kinds, `--namespace=${namespace}`, `--selector=${selector}`, '--output=json'])) as { items: { kind: string; metadata: { name: string; uid: string } }[] };
    return new Map(list.items.map((item) => [`${item.kind}/${item.metadata.name}`, item.metadata.uid]));
  }

  async function dryRunCreate(name: string, objects: KubeObject[]): Promise<void> {
    const manifest = path.join(dir, `${name}.json`);
    await writeFile(manifest, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
    await cluster.kubectl(['create', '--dry-run=server', '--validate=strict', `--filename=${manifest}`]);
  }

  async function installAndCheck({ file, values, release, namespace }: Scenario): Promise<void> {
    await ensureNamespace(namespace);
    for (const target of values.deployTargets ?? []) await ensureNamespace(target);
    const secret = existingSecret(values, namespace);
    if (secret) await cluster.admin.request('POST', `/api/v1/namespaces/${namespace}/secrets`, secret);

    // What helm will create, validated by the API server without persisting it: strict field
    // validation against the built-in schemas and KEDA's (helm itself would let the server drop
    // unknown fields silently). Pods come after the install: pod admission needs their service account.
    const rendered = await helm.render([scenarioPath(file)], { release, namespace });
    const isPod = (object: KubeObject): boolean => object.kind === 'Pod';
    // The builder's objects go into the namespace the chart creates: they are validated once it exists.
    const inBuilderNamespace = (object: KubeObject): boolean => isBuilderObject(object) && object.kind !== 'Namespace';
    await dryRunCreate(`${release}-objects`, rendered.filter((object) => !isPod(object) && !inBuilderNamespace(object)));

    const output = await helm.run(['install', release, CHART_DIR, `--namespace=${namespace}`, `--values=${scenarioPath(file)}`, '--wait', '--timeout=120s'], 180_000);
    // Pod Security admission of the helm test pod and of every pod the chart's StatefulSet,
    // ScaledJob and hook would start.
    await dryRunCreate(`${release}-pods`, [...rendered.filter(isPod), ...templateProbes(rendered, namespace)]);
    assert.equal(output.includes('WARNING: auth.createSecret=true'), values.auth.createSecret === true, `${file}: NOTES warn exactly when the chart creates the Secret`);
    if (values.builder?.enabled) await checkBuilder({ file, values, release, namespace }, rendered);

    if (values.mode === 'persistent') {
      const replicas = (values.profiles ?? [{ name: 'default' }]).reduce((sum, profile) => sum + (profile.maxReplicas ?? values.persistent?.replicas ?? 2), 0);
      const pods = await runningPhases(namespace, `app.kubernetes.io/instance=${release},app.kubernetes.io/component=agent`);
      assert.deepEqual(pods, Array<string>(replicas).fill('Running'), `${file}: every profile's StatefulSet pods were admitted and run`);
    } else {
      // Every profile's placeholder hook Job ran to completion (helm waits for hooks) and was removed on success.
      for (const rendering of rendered.filter((object) => object.kind === 'ScaledJob')) {
        const scaledJob = JSON.parse(await cluster.kubectl(['get', 'scaledjob', rendering.metadata.name, `--namespace=${namespace}`, '--output=json'])) as { spec: { triggers: { metadata: Record<string, string> }[] } };
        assert.equal(scaledJob.spec.triggers[0]?.metadata.fetchUnfinishedJobsOnly, 'true', file);
      }
      const hookJobs = await cluster.kubectl(['get', 'jobs', `--namespace=${namespace}`, '--output=name']);
      assert.equal(hookJobs.trim(), '', `${file}: the placeholder hooks succeeded and were cleaned up`);
    }
    if (values.cleanup?.enabled) {
      assert.equal((await cluster.kubectl(['get', 'cronjobs', `--namespace=${namespace}`, '--output=name'])).trim(), `cronjob.batch/${release}-azure-pipelines-agent-cleanup`, file);
    }

    const serviceAccountName = findObject(rendered, 'ServiceAccount').metadata.name;
    const serviceAccount = `system:serviceaccount:${namespace}:${serviceAccountName}`;
    const targets = values.clusterWide ? [UNRELATED_NAMESPACE, namespace] : (values.deployTargets ?? []);
    for (const target of targets) {
      for (const [verb, resource] of [['create', 'deployments.apps'], ['patch', 'services'], ['create', 'secrets'], ['get', 'pods/log']] as const) {
        assert.equal(await canI(cluster, serviceAccount, verb, resource, target), true, `${file}: ${verb} ${resource} in ${target}`);
      }
      for (const [verb, resource] of [['*', '*'], ['create', 'roles.rbac.authorization.k8s.io'], ['create', 'rolebindings.rbac.authorization.k8s.io'], ['create', 'pods/exec'], ['escalate', 'roles.rbac.authorization.k8s.io']] as const) {
        assert.equal(await canI(cluster, serviceAccount, verb, resource, target), false, `${file}: ${verb} ${resource} in ${target}`);
      }
    }
    if (!values.clusterWide) {
      for (const elsewhere of [UNRELATED_NAMESPACE, namespace]) {
        for (const [verb, resource] of [['create', 'deployments.apps'], ['get', 'secrets'], ['list', 'pods']] as const) {
          assert.equal(await canI(cluster, serviceAccount, verb, resource, elsewhere), false, `${file}: ${verb} ${resource} in ${elsewhere}`);
        }
      }
    }
    for (const [verb, resource] of [['create', 'namespaces'], ['list', 'nodes'], ['create', 'clusterrolebindings.rbac.authorization.k8s.io'], ['create', 'customresourcedefinitions.apiextensions.k8s.io']] as const) {
      assert.equal(await canI(cluster, serviceAccount, verb, resource), false, `${file}: cluster-scoped ${verb} ${resource}`);
    }

    await checkHelmTest({ file, release, namespace }, rendered, serviceAccountName);
  }

  /**
   * `helm test` runs the chart's test pod (the fake kubelet only reports it finished), so its command
   * is also run here as the pod would: kubectl with a token of the pod's service account. It must
   * succeed for the agents' account and fail for one without the rights.
   */
  async function checkHelmTest({ file, release, namespace }: Pick<Scenario, 'file' | 'release' | 'namespace'>, rendered: KubeObject[], serviceAccountName: string): Promise<void> {
    await helm.run(['test', release, `--namespace=${namespace}`, '--timeout=60s']);
    const testPod = findObject(rendered, 'Pod', (pod) => pod.metadata.annotations?.['helm.sh/hook'] === 'test');
    const [command, ...args] = (testPod.spec as { containers: { command: string[] }[] }).containers[0]?.command ?? [];
    assert.equal(command, 'kubectl', file);
    const runAs = async (account: string): Promise<void> => {
      const kubeconfig = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken(namespace, account) });
      await runTool(kubeToolPath('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args]);
    };
    await runAs(serviceAccountName);
    const refused = await runAs('default').then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof ToolError && refused.exitCode === 1, `${file}: the test pod's check passes for an account without rights`);
  }

  /**
   * The builder as installed: its objects pass strict validation in its own namespace, which admits
   * its pods, while the agents' namespace, still enforcing `restricted`, refuses the very same pod;
   * its StatefulSet runs every replica; its certificates are a working pair from one CA.
   */
  async function checkBuilder({ file, values, release, namespace }: Scenario, rendered: KubeObject[]): Promise<void> {
    const builderNamespace = `${namespace}-buildkit`;
    const labels = JSON.parse(await cluster.kubectl(['get', 'namespace', builderNamespace, '--output=jsonpath={.metadata.labels}'])) as Record<string, string>;
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'privileged', file);
    const agentsLabels = JSON.parse(await cluster.kubectl(['get', 'namespace', namespace, '--output=jsonpath={.metadata.labels}'])) as Record<string, string>;
    assert.equal(agentsLabels['pod-security.kubernetes.io/enforce'], 'restricted', `${file}: the agents' namespace still enforces restricted`);
    const manifest = path.join(dir, `${release}-builder.json`);
    await writeFile(manifest, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rendered.filter((object) => isBuilderObject(object) && object.kind !== 'Namespace') }));
    await cluster.kubectl(['apply', '--server-side', '--force-conflicts', '--dry-run=server', '--validate=strict', `--filename=${manifest}`]);

    const [{ template }] = allPodTemplates(rendered.filter(isBuilderObject));
    const probe = (inNamespace: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'builder-probe', namespace: inNamespace, labels: template.metadata.labels }, spec: { ...template.spec, volumes: [...(template.spec.volumes ?? []), { name: 'state', emptyDir: {} }] } });
    await dryRunCreate(`${release}-builder-pod`, [probe(builderNamespace)]);
    const refused = await dryRunCreate(`${release}-builder-pod-in-agents`, [probe(namespace)]).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof ToolError, `${file}: the agents' namespace admitted the builder pod`);
    assert.match(refused.stderr, /violates PodSecurity "restricted[^"]*".*seccompProfile/, file);

    assert.deepEqual(await runningPhases(builderNamespace, `app.kubernetes.io/instance=${release},app.kubernetes.io/component=builder`), Array<string>(values.builder?.replicas ?? 1).fill('Running'), `${file}: the builder's replicas run`);
    await checkCertificatePair(builderNamespace, namespace, `${release}-azure-pipelines-agent-buildkit`);
  }

  /** The certificates the chart made in the cluster: one CA, the daemon's for its Service name, the agents' for client auth. */
  async function checkCertificatePair(builderNamespace: string, namespace: string, name: string): Promise<Record<string, string>> {
    const read = async (inNamespace: string, secret: string) => {
      const data = (JSON.parse(await cluster.kubectl(['get', 'secret', secret, `--namespace=${inNamespace}`, '--output=json'])) as { data: Record<string, string> }).data;
      return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
    };
    const server = await read(builderNamespace, `${name}-server`);
    const client = await read(namespace, `${name}-client`);
    const ca = new X509Certificate(server['ca.crt']);
    assert.equal(client['ca.crt'], server['ca.crt']);
    const serverCert = new X509Certificate(server['tls.crt']);
    assert.ok(serverCert.verify(ca.publicKey) && new X509Certificate(client['tls.crt']).verify(ca.publicKey));
    assert.ok(serverCert.checkHost(`${name}.${builderNamespace}.svc`), serverCert.subjectAltName);
    return { server: server['tls.crt'] + server['tls.key'], client: client['tls.crt'] + client['tls.key'], ca: server['ca.crt'] };
  }

  /**
   * The pods the builder's NetworkPolicy, as the API server stored it, lets connect: each ingress
   * peer's selectors are handed to the API server, which picks the namespaces and pods, as a
   * network plugin would. `namespace/name` of every pod admitted.
   */
  async function podsAdmittedToBuilder(builderNamespace: string, name: string): Promise<string[]> {
    type Selector = { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
    const policy = JSON.parse(await cluster.kubectl(['get', 'networkpolicy', name, `--namespace=${builderNamespace}`, '--output=json'])) as { spec: { ingress?: { from?: { namespaceSelector?: Selector; podSelector?: Selector; ipBlock?: unknown }[] }[] } };
    const selector = (labels: Selector): string => {
      assert.equal(labels.matchExpressions, undefined, 'only matchLabels are evaluated here');
      return Object.entries(labels.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`).join(',');
    };
    const admitted = new Set<string>();
    for (const rule of policy.spec.ingress ?? []) {
      assert.ok(rule.from?.length, 'an ingress rule without `from` admits everything');
      for (const peer of rule.from) {
        assert.equal(peer.ipBlock, undefined, 'an ipBlock admits addresses, not pods');
        assert.ok(peer.namespaceSelector && peer.podSelector, 'each peer names namespaces and pods');
        const namespaces = (JSON.parse(await cluster.kubectl(['get', 'namespaces', `--selector=${selector(peer.namespaceSelector)}`, '--output=json'])) as { items: KubeObject[] }).items;
        for (const { metadata } of namespaces) {
          const pods = (JSON.parse(await cluster.kubectl(['get', 'pods', `--namespace=${metadata.name}`, `--selector=${selector(peer.podSelector)}`, '--output=json'])) as { items: KubeObject[] }).items;
          for (const pod of pods) admitted.add(`${metadata.name}/${pod.metadata.name}`);
        }
      }
    }
    return [...admitted].sort();
  }

  void it('helm upgrade keeps the builder\'s certificates, the agents\' namespace keeps enforcing restricted, and the builder\'s NetworkPolicy admits only the release\'s agent pods', async () => {
    const namespace = BUILDER_UPGRADE_NAMESPACE;
    const release = 'builders';
    await ensureNamespace(namespace);
    await cluster.admin.request('POST', `/api/v1/namespaces/${namespace}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'azp-pat' }, stringData: { pat: 'test-pat' } });
    const values = {
      azp: { url: 'https://dev.azure.com/contoso', pool: 'pool' },
      image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
      auth: { existingSecret: 'azp-pat' },
      deployTargets: [UNRELATED_NAMESPACE],
      persistent: { replicas: 1, workVolumeClaim: { enabled: false } },
      networkPolicy: { apiServer: { cidrs: ['10.0.0.1/32'] }, registry: { cidrs: ['10.1.0.0/28'] }, azureDevOps: { cidrs: ['13.107.6.0/24'] } },
      builder: { enabled: true },
    };
    const output = await helm.run(['install', release, CHART_DIR, `--namespace=${namespace}`, `--values=${await helm.valuesFile(values)}`, '--wait', '--timeout=120s'], 180_000);
    assert.match(output, /BuildKit builder for Dockerfiles with RUN: 1 × rootless buildkitd in namespace builder-upgrade-buildkit/);
    const name = `${release}-azure-pipelines-agent-buildkit`;
    const installed = await checkCertificatePair(`${namespace}-buildkit`, namespace, name);
    for (const replicas of [2, 1]) {
      await helm.run(['upgrade', release, CHART_DIR, `--namespace=${namespace}`, `--values=${await helm.valuesFile({ ...values, builder: { enabled: true, replicas } })}`, '--wait', '--timeout=120s'], 180_000);
      assert.deepEqual(await checkCertificatePair(`${namespace}-buildkit`, namespace, name), installed, `upgrade to ${replicas} replicas: the certificates changed`);
      assert.equal((await runningPhases(`${namespace}-buildkit`, `app.kubernetes.io/instance=${release},app.kubernetes.io/component=builder`)).length, replicas);
    }
    const labels = JSON.parse(await cluster.kubectl(['get', 'namespace', namespace, '--output=jsonpath={.metadata.labels}'])) as Record<string, string>;
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted');

    // A pod of this release that runs no jobs (as the placeholder): the agent's pod with another component.
    const [agentTemplate] = podTemplates(await helm.render([await helm.valuesFile(values)], { release, namespace })).filter(({ owner }) => owner.kind === 'StatefulSet');
    await cluster.admin.request('POST', `/api/v1/namespaces/${namespace}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'not-an-agent', labels: { ...agentTemplate.template.metadata.labels, 'app.kubernetes.io/component': 'placeholder' } }, spec: agentTemplate.template.spec });
    // Of every pod in the cluster (that one, the agents of the other releases installed above,
    // labelled as agents too, and the builders themselves), the policy admits this release's agents only.
    const everyPod = (JSON.parse(await cluster.kubectl(['get', 'pods', '--all-namespaces', '--output=json'])) as { items: (KubeObject & { metadata: { ownerReferences?: { kind: string; name: string }[] } })[] }).items;
    const agents = everyPod.filter((pod) => pod.metadata.namespace === namespace && pod.metadata.ownerReferences?.some((owner) => owner.kind === 'StatefulSet'));
    assert.equal(agents.length, 1, 'the release runs one agent');
    assert.ok(everyPod.some((pod) => pod.metadata.namespace !== namespace && pod.metadata.labels?.['app.kubernetes.io/component'] === 'agent'), "other releases' agents run in the cluster");
    assert.ok(everyPod.some((pod) => pod.metadata.name === 'not-an-agent'));
    assert.deepEqual(await podsAdmittedToBuilder(`${namespace}-buildkit`, name), agents.map((pod) => `${namespace}/${pod.metadata.name}`));
  });

  void it('helm upgrade from values without profiles to profiles keeps the default profile\'s objects, and adds the others', async () => {
    const builds = { name: 'builds', capabilities: { 'agent.profile': 'builds' }, demands: ['agent.profile -equals builds'], maxReplicas: 1 };
    for (const mode of ['persistent', 'scaledJob'] as const) {
      const namespace = UPGRADE_NAMESPACES[mode];
      const release = `upgraded-${mode.toLowerCase()}`;
      await ensureNamespace(namespace);
      await cluster.admin.request('POST', `/api/v1/namespaces/${namespace}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'azp-pat' }, stringData: { pat: 'test-pat' } });
      const base = {
        mode,
        azp: { url: 'https://dev.azure.com/contoso', pool: 'pool' },
        image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
        auth: { existingSecret: 'azp-pat' },
        deployTargets: [UNRELATED_NAMESPACE],
        networkPolicy: { enabled: false },
      };
      const selector = `app.kubernetes.io/instance=${release}`;
      const kinds = mode === 'persistent' ? 'statefulsets,poddisruptionbudgets,persistentvolumeclaims' : 'scaledjobs,triggerauthentications';
      await helm.run(['install', release, CHART_DIR, `--namespace=${namespace}`, `--values=${await helm.valuesFile(base)}`, '--wait', '--timeout=120s'], 180_000);
      const before = await uids(namespace, kinds, selector);
      assert.ok(before.size >= 2, `${mode}: ${[...before.keys()].join(', ')}`);

      await helm.run(['upgrade', release, CHART_DIR, `--namespace=${namespace}`, `--values=${await helm.valuesFile({ ...base, profiles: [{ name: 'default' }, builds] })}`, '--wait', '--timeout=120s'], 180_000);
      const after = await uids(namespace, kinds, selector);
      for (const [object, uid] of before) assert.equal(after.get(object), uid, `${mode}: ${object} was replaced by the upgrade`);
      const added = [...after.keys()].filter((object) => !before.has(object)).sort();
      assert.deepEqual(
        added,
        mode === 'persistent'
          ? [`PersistentVolumeClaim/work-${release}-azure-pipelines-agent-builds-0`, `PodDisruptionBudget/${release}-azure-pipelines-agent-builds`, `StatefulSet/${release}-azure-pipelines-agent-builds`]
          : [`ScaledJob/${release}-azure-pipelines-agent-builds`],
        mode,
      );
      if (mode === 'persistent') {
        assert.deepEqual(await runningPhases(namespace, `${selector},app.kubernetes.io/component=agent`), ['Running', 'Running', 'Running'], 'two default agents and one builds agent run');
      } else {
        assert.equal((await cluster.kubectl(['get', 'jobs', `--namespace=${namespace}`, '--output=name'])).trim(), '', 'both placeholder hooks ran');
      }
    }
  });

  void it('refuses values that make no sense at helm install, with a message, before creating anything', async () => {
    await ensureNamespace(REFUSED_NAMESPACE);
    const base = {
      azp: { url: 'https://dev.azure.com/contoso', pool: 'pool' },
      image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
      auth: { existingSecret: 'azp-pat' },
      deployTargets: [UNRELATED_NAMESPACE],
      networkPolicy: { enabled: false },
    };
    const cases: { values: Record<string, unknown>; message: RegExp }[] = [
      { values: { mode: 'scaledJob', azp: { url: 'https://dev.azure.com/contoso' } }, message: /mode=scaledJob needs azp\.pool: set it/ },
      { values: { deployTargets: [] }, message: /deployTargets is empty: list the namespaces/ },
      { values: { auth: {} }, message: /no authentication configured: set auth\.workloadIdentity\.clientId/ },
      { values: { drainTimeoutSeconds: 3600, terminationGracePeriodSeconds: 1800 }, message: /terminationGracePeriodSeconds=1800 is shorter than drainTimeoutSeconds \(3600\)/ },
      // A misspelt top-level value is refused rather than ignored (the schema knows every key).
      { values: { profile: [{ name: 'builds' }] }, message: /values don't meet the specifications of the schema\(s\)[^]*additional properties 'profile' not allowed/ },
      { values: { mode: 'scaledJob', profiles: [{ name: 'default' }, { name: 'small' }] }, message: /both have no demands: KEDA would start an agent of each/ },
    ];
    for (const { values, message } of cases) {
      const valuesFile = await helm.valuesFile({ ...base, ...values });
      const stderr = await helmFailure(helm.run(['install', 'refused', CHART_DIR, `--namespace=${REFUSED_NAMESPACE}`, `--values=${valuesFile}`]));
      assert.match(stderr, message);
    }
    assert.equal((await helm.run(['list', `--namespace=${REFUSED_NAMESPACE}`, '--all', '--short'])).trim(), '', 'no release was recorded');
    assert.equal((await cluster.kubectl(['get', 'serviceaccounts,roles,rolebindings', `--namespace=${REFUSED_NAMESPACE}`, '--selector=app.kubernetes.io/instance=refused', '--output=name'])).trim(), '');
  });
});
