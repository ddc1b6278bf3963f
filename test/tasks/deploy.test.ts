// PrivateAksDeploy@1 end to end: the bundled task, run as the agent runs it, deploys into the real
// test API server (etcd, kube-apiserver, controllers; a fake kubelet runs the pods) through every
// connection type, with a chart that real helm pushed into the test registry behind the Entra and
// ACR stand-ins. The ARM stand-in in front serves AKS credentials and runs run-command with real
// kubectl and helm. One environment for the file; one namespace per test.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARM_MANAGEMENT_AUDIENCE, startAksArm, type AksArmStandIn } from '../arm/aksArm.js';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment, type ServicePrincipal } from '../env/environment.js';
import { runTool } from '../env/processes.js';
import { AKS_AUDIENCE, kubeToolPath, startControlPlane, type ControlPlane } from '../kube/controlPlane.js';
import { startFakeKubelet, type FakeKubelet } from '../kube/fakeKubelet.js';
import { assertNoSecretPrinted } from '../support/registryIdentities.js';
import { runTask, type ServiceConnection, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAksDeploy';
const NAMESPACES = ['in-cluster', 'kubeconfig', 'service-connection', 'arm', 'run-command', 'failures', 'rbac', 'helm-atomic'];
const FIELD_MANAGER = 'private-aks-acr-pipelines';

let env: AcrEnvironment;
let cluster: ControlPlane;
let kubelet: FakeKubelet;
let arm: AksArmStandIn;
let work: string;
let chartRef: string;

/** A chart whose pods the fake kubelet fails when `failWith` is set (via a pod label) and never starts with `pending`. */
async function writeChart(dir: string): Promise<void> {
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: "1.0"\n');
  await writeFile(join(dir, 'values.yaml'), 'replicaCount: 1\nimage: registry.example/team/tiny:1.0\nfailWith: ""\ngreeting: hello\n');
  await writeFile(
    join(dir, 'templates', 'deployment.yaml'),
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-tiny
  labels: { app.kubernetes.io/instance: {{ .Release.Name }} }
spec:
  replicas: {{ .Values.replicaCount }}
  selector: { matchLabels: { app.kubernetes.io/instance: {{ .Release.Name }} } }
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
        {{- if .Values.failWith }}
        fail-with: {{ .Values.failWith }}
        {{- end }}
    spec:
      containers:
        - name: app
          image: {{ .Values.image }}
          env: [{ name: GREETING, value: {{ .Values.greeting | quote }} }]
`,
  );
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'deploy-test-'));
  env = await startAcrEnvironment();
  cluster = await startControlPlane({
    dir: join(work, 'cluster'),
    ca: env.ca,
    oidc: { issuerUrl: `${env.entra.url}/${env.entra.tenantId}/v2.0`, audience: AKS_AUDIENCE, caPem: env.ca.caCertPem },
  });
  for (const namespace of NAMESPACES) await cluster.createNamespace(namespace, { podSecurity: 'baseline' });
  kubelet = await startFakeKubelet(cluster, {
    namespaces: NAMESPACES,
    decide: (pod) => {
      const failWith = pod.metadata.labels?.['fail-with'];
      if (failWith) return { fail: failWith, message: `test asked for ${failWith}` };
      return pod.metadata.labels?.stay === 'pending' ? 'pending' : 'ready';
    },
  });
  arm = await startAksArm({ ca: env.ca, entra: env.entra, controlPlane: cluster });
  arm.addCluster('rg-apps', 'aks-private');

  const chartDir = join(work, 'chart-src');
  await writeChart(chartDir);
  const pusher = await env.createClientTrust({ role: 'push' });
  await runTool(testToolPath('helm'), ['package', chartDir, '--destination', join(work, 'packaged')], { env: pusher.toolEnv });
  const [packaged] = await readdir(join(work, 'packaged'));
  await runTool(testToolPath('helm'), ['push', join(work, 'packaged', packaged), `oci://${env.registryHost}/helm`, ...registryTrustArgs.helm(pusher)], { env: pusher.toolEnv });
  chartRef = `oci://${env.registryHost}/helm/tiny`;
});

after(async () => {
  await kubelet?.stop();
  await arm?.stop();
  await cluster?.stop();
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

/** PATH with the built helm and kubectl first, as the agent image has them; the test CA trusted by node (NODE_EXTRA_CA_CERTS) and helm (SSL_CERT_FILE). */
function agentEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: `${dirname(testToolPath('helm'))}:${dirname(kubeToolPath('kubectl'))}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    NODE_EXTRA_CA_CERTS: env.ca.caCertPath,
    SSL_CERT_FILE: env.ca.caCertPath,
    ...extra,
  };
}

async function deploy(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
  const run = await runTask(TASK, { ...options, inputs, env: agentEnv(options.env), timeoutMs: 180_000 });
  assertNoSecretPrinted(env, run);
  return run;
}

function assertSucceeded(run: TaskRun): void {
  assert.equal(run.result, 'Succeeded', `${run.message}\n${run.maskedOutput}`);
}

function assertFailed(run: TaskRun, pattern: RegExp): void {
  assert.equal(run.result, 'Failed', run.maskedOutput);
  assert.match(run.message ?? '', pattern, run.maskedOutput);
}

async function kubectlJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await cluster.kubectl([...args, '-o', 'json'])) as T;
}

/** A service account bound to a cluster role in its namespace, mounted the way a pod sees it. */
async function serviceAccountFolder(namespace: string, name: string, clusterRole: string): Promise<string> {
  await cluster.createServiceAccount(namespace, name);
  await cluster.kubectl(['create', 'rolebinding', `${name}-${clusterRole}`, `--clusterrole=${clusterRole}`, `--serviceaccount=${namespace}:${name}`, `--namespace=${namespace}`]);
  return cluster.writeInClusterFolder(namespace, name);
}

function inClusterEnv(folder: string): Record<string, string> {
  const server = new URL(cluster.server);
  return { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port, KUBERNETES_SERVICE_ACCOUNT_DIR: folder };
}

/** An AzureRM connection (client secret) to the ARM stand-in, whose principal may pull charts. */
function armConnection(principal: ServicePrincipal): ServiceConnection {
  return {
    scheme: 'ServicePrincipal',
    url: arm.url,
    parameters: { serviceprincipalid: principal.clientId, serviceprincipalkey: principal.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
    data: { environmentAuthorityUrl: env.entra.authorityUrl, subscriptionId: arm.subscriptionId, activeDirectoryServiceEndpointResourceId: ARM_MANAGEMENT_AUDIENCE },
  };
}

let manifestCounter = 0;
/** Writes a manifest set: a ConfigMap, a Deployment of `image`, a Job; `podLabels` go on the Deployment's pods. */
async function writeManifests(namespace: string, options: { name?: string; image?: string; podLabels?: Record<string, string>; replicas?: number } = {}): Promise<string> {
  const dir = join(work, `manifests-${++manifestCounter}`);
  await mkdir(dir);
  const name = options.name ?? 'web';
  const labels = { app: name, ...options.podLabels };
  await writeFile(join(dir, 'config.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  mode: test\n`);
  await writeFile(
    join(dir, 'workloads.yaml'),
    [
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace }, spec: { replicas: options.replicas ?? 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: options.image ?? 'contoso.azurecr.io/team/web:placeholder' }] } } } },
      { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: `migrate-${manifestCounter}` }, spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'migrate', image: 'contoso.azurecr.io/team/migrate:1' }] } } } },
    ]
      .map((object) => `---\n${JSON.stringify(object)}\n`)
      .join(''),
  );
  return join(dir, '*.yaml');
}

void describe('PrivateAksDeploy with connectionType inCluster', () => {
  test('applies manifests server-side, substitutes images, waits for the rollout and reports appliedObjects', async () => {
    const folder = await serviceAccountFolder('in-cluster', 'deployer', 'edit');
    const run = await deploy(
      { connectionType: 'inCluster', authMode: 'none', deployType: 'manifests', manifests: await writeManifests('in-cluster'), images: 'contoso.azurecr.io/team/web:1.0.0\ncontoso.azurecr.io/team/unused:2', rolloutTimeout: '60' },
      { env: inClusterEnv(folder) },
    );
    assertSucceeded(run);
    assert.equal(run.outputs.appliedObjects, `ConfigMap/in-cluster/web-config,Deployment/in-cluster/web,Job/in-cluster/migrate-${manifestCounter}`);
    assert.match(run.maskedOutput, /Deployment\/in-cluster\/web: rolled out \(2 available\)/);
    assert.match(run.maskedOutput, /Job\/in-cluster\/migrate-\d+: complete/);
    assert.ok(run.warnings.some((warning) => /contoso\.azurecr\.io\/team\/unused:2 matches no container image/.test(warning)), run.warnings.join('\n'));
    const deployment = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } }; metadata: { managedFields: { manager: string; operation: string }[] } }>(['get', 'deployment', 'web', '--namespace=in-cluster', '--show-managed-fields']);
    assert.equal(deployment.spec.template.spec.containers[0].image, 'contoso.azurecr.io/team/web:1.0.0');
    assert.ok(deployment.metadata.managedFields.some((field) => field.manager === FIELD_MANAGER && field.operation === 'Apply'));
  });

  test('installs an OCI chart from the registry with Entra auth, values and overrides; releaseRevision counts upgrades', async () => {
    const folder = await serviceAccountFolder('in-cluster', 'helm-deployer', 'admin');
    const puller = env.addServicePrincipal('pull');
    const connections = { arm: armConnection(puller) };
    const values = join(work, 'in-cluster-values.yaml');
    await writeFile(values, 'replicaCount: 2\n');
    const inputs = { connectionType: 'inCluster', azureSubscription: 'arm', deployType: 'helm', chart: chartRef, chartVersion: '0.1.0', releaseName: 'tiny', namespace: 'in-cluster', valueFiles: values, overrides: 'greeting=from overrides' };
    const first = await deploy(inputs, { connections, env: inClusterEnv(folder) });
    assertSucceeded(first);
    assert.equal(first.outputs.releaseRevision, '1');
    const deployment = await kubectlJson<{ spec: { replicas: number; template: { spec: { containers: { env: { value: string }[] }[] } } }; status: { readyReplicas: number } }>(['get', 'deployment', 'tiny-tiny', '--namespace=in-cluster']);
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(deployment.status.readyReplicas, 2);
    assert.equal(deployment.spec.template.spec.containers[0].env[0].value, 'from overrides');
    assert.ok(!helmArgvMentions(first, 'from overrides'), 'overrides stay off helm argv');
    const second = await deploy(inputs, { connections, env: inClusterEnv(folder) });
    assertSucceeded(second);
    assert.equal(second.outputs.releaseRevision, '2');
  });
});

/** The debug log carries helm's argv; overrides must not be in it. */
function helmArgvMentions(run: TaskRun, text: string): boolean {
  return run.maskedOutput.split('\n').some((line) => line.includes('upgrade --install') && line.includes(text));
}

void describe('PrivateAksDeploy with connectionType kubeconfig', () => {
  test('kubeconfigPath: deploys manifests and a chart as a service-account token user', async () => {
    await cluster.createServiceAccount('kubeconfig', 'ci');
    await cluster.kubectl(['create', 'rolebinding', 'ci-admin', '--clusterrole=admin', '--serviceaccount=kubeconfig:ci', '--namespace=kubeconfig']);
    const kubeconfigPath = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken('kubeconfig', 'ci') });
    const manifests = await deploy({ connectionType: 'kubeconfig', kubeconfigPath, authMode: 'none', namespace: 'kubeconfig', deployType: 'manifests', manifests: await writeManifests('kubeconfig'), rolloutTimeout: '60' });
    assertSucceeded(manifests);
    const puller = env.addServicePrincipal('pull');
    const chart = await deploy(
      { connectionType: 'kubeconfig', kubeconfigPath, azureSubscription: 'arm', namespace: 'kubeconfig', deployType: 'helm', chart: chartRef, releaseName: 'tiny' },
      { connections: { arm: armConnection(puller) } },
    );
    assertSucceeded(chart);
    assert.equal(chart.outputs.releaseRevision, '1');
  });

  test('a Kubernetes service connection of type ServiceAccount deploys manifests and a chart', async () => {
    await cluster.createServiceAccount('service-connection', 'ci');
    await cluster.kubectl(['create', 'rolebinding', 'ci-admin', '--clusterrole=admin', '--serviceaccount=service-connection:ci', '--namespace=service-connection']);
    const token = await cluster.mintServiceAccountToken('service-connection', 'ci');
    const puller = env.addServicePrincipal('pull');
    const connections: Record<string, ServiceConnection> = {
      k8s: { scheme: 'Token', url: cluster.server, parameters: { apiToken: Buffer.from(token).toString('base64'), serviceAccountCertificate: Buffer.from(cluster.caPem).toString('base64') }, data: { authorizationType: 'ServiceAccount' } },
      arm: armConnection(puller),
    };
    const base = { connectionType: 'kubeconfig', kubernetesServiceConnection: 'k8s', namespace: 'service-connection' };
    assertSucceeded(await deploy({ ...base, authMode: 'none', deployType: 'manifests', manifests: await writeManifests('service-connection') }, { connections }));
    const chart = await deploy({ ...base, azureSubscription: 'arm', deployType: 'helm', chart: chartRef, releaseName: 'tiny' }, { connections });
    assertSucceeded(chart);
    assert.ok(!chart.maskedOutput.includes(token), 'the service account token is masked');
  });
});

void describe('PrivateAksDeploy with connectionType azureResourceManager', () => {
  let principal: ServicePrincipal;
  before(async () => {
    principal = env.addServicePrincipal('pull');
    arm.grant(principal.objectId);
    await cluster.kubectl(['create', 'rolebinding', 'entra-deployer', '--clusterrole=admin', `--user=${principal.objectId}`, '--namespace=arm']);
  });

  test('user credentials from ARM and an in-process Entra token for the AKS audience deploy manifests and a chart, no kubelogin', async () => {
    const connections = { arm: armConnection(principal) };
    const base = { connectionType: 'azureResourceManager', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'arm' };
    const before = env.entra.tokenRequests.length;
    const manifests = await deploy({ ...base, deployType: 'manifests', manifests: await writeManifests('arm') }, { connections });
    assertSucceeded(manifests);
    const chart = await deploy({ ...base, deployType: 'helm', chart: chartRef, releaseName: 'tiny' }, { connections });
    assertSucceeded(chart);
    assert.equal(chart.outputs.releaseRevision, '1');
    const aksTokens = env.entra.tokenRequests.slice(before).filter((request) => request.clientId === principal.clientId && request.scope === `${AKS_AUDIENCE}/.default` && request.status === 200);
    assert.equal(aksTokens.length, 2, 'one AKS-audience token per run');
    assert.ok(arm.requests.some((request) => /listClusterUserCredential$/.test(request.path) && request.status === 200));
    // The API server knows the deployer by its Entra object id: the token was accepted, not some other credential.
    const deployment = await kubectlJson<{ metadata: { managedFields: { manager: string }[] } }>(['get', 'deployment', 'web', '--namespace=arm', '--show-managed-fields']);
    assert.ok(deployment.metadata.managedFields.some((field) => field.manager === FIELD_MANAGER));
  });

  test('unknown cluster and unknown resource group fail with one clear line', async () => {
    const connections = { arm: armConnection(principal) };
    const base = { connectionType: 'azureResourceManager', azureSubscription: 'arm', namespace: 'arm', deployType: 'manifests', manifests: await writeManifests('arm') };
    assertFailed(await deploy({ ...base, resourceGroup: 'rg-apps', cluster: 'nope' }, { connections }), /AKS cluster 'nope' in resource group 'rg-apps': it does not exist \(ResourceNotFound/);
    assertFailed(await deploy({ ...base, resourceGroup: 'rg-missing', cluster: 'aks-private' }, { connections }), /it does not exist \(ResourceGroupNotFound/);
  });
});

void describe('PrivateAksDeploy with connectionType runCommand', () => {
  let principal: ServicePrincipal;
  before(async () => {
    principal = env.addServicePrincipal('pull');
    arm.grant(principal.objectId);
    await cluster.kubectl(['create', 'rolebinding', 'entra-deployer', '--clusterrole=admin', `--user=${principal.objectId}`, '--namespace=run-command']);
  });

  test('runs kubectl and helm in the cluster with a zipped context and the AKS token, polling for the result', async () => {
    const connections = { arm: armConnection(principal) };
    const base = { connectionType: 'runCommand', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'run-command' };
    const manifests = await deploy({ ...base, deployType: 'manifests', manifests: await writeManifests('run-command'), images: 'contoso.azurecr.io/team/web:2.0.0' }, { connections });
    assertSucceeded(manifests);
    assert.match(manifests.outputs.appliedObjects ?? '', /^ConfigMap\/run-command\/web-config,Deployment\/run-command\/web,Job\/run-command\/migrate-\d+$/);
    const record = arm.runCommands.at(-1)!;
    assert.deepEqual(record.files, ['manifests.yaml']);
    assert.equal(env.entra.verifyAccessToken(record.clusterToken).aud, AKS_AUDIENCE);
    assert.ok(arm.requests.some((request) => /commandResults/.test(request.path) && request.status === 202), 'the task polled while the command ran');
    const image = await cluster.kubectl(['get', 'deployment', 'web', '--namespace=run-command', '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);
    assert.equal(image, 'contoso.azurecr.io/team/web:2.0.0');

    const chart = await deploy({ ...base, deployType: 'helm', chart: chartRef, chartVersion: '0.1.0', releaseName: 'tiny', overrides: 'replicaCount=2' }, { connections });
    assertSucceeded(chart);
    assert.equal(chart.outputs.releaseRevision, '1');
    assert.deepEqual(arm.runCommands.at(-1)!.files.sort(), ['0-tiny-0.1.0.tgz', 'overrides.yaml']);
  });

  test('a failing command fails the task with its exit code and logs', async () => {
    const connections = { arm: armConnection(principal) };
    const run = await deploy(
      { connectionType: 'runCommand', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'run-command', deployType: 'manifests', manifests: await writeManifests('run-command', { podLabels: { 'fail-with': 'ImagePullBackOff' } }), rolloutTimeout: '8' },
      { connections },
    );
    assertFailed(run, /exited with code 1/);
    assert.match(run.maskedOutput, /ImagePullBackOff|Warning|NAME\s+READY/);
  });
});

void describe('PrivateAksDeploy failures', () => {
  let kubeconfigPath: string;
  before(async () => {
    await cluster.createServiceAccount('failures', 'ci');
    await cluster.kubectl(['create', 'rolebinding', 'ci-admin', '--clusterrole=admin', '--serviceaccount=failures:ci', '--namespace=failures']);
    kubeconfigPath = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken('failures', 'ci') });
  });
  const manifestsInputs = (manifests: string, extra: Record<string, string> = {}) => ({ connectionType: 'kubeconfig', kubeconfigPath, authMode: 'none', namespace: 'failures', deployType: 'manifests', manifests, ...extra });

  test('a rollout whose pods fail stops at once with the reason, and prints pod conditions and container states', async () => {
    const run = await deploy(manifestsInputs(await writeManifests('failures', { podLabels: { 'fail-with': 'CrashLoopBackOff' } }), { rolloutTimeout: '120' }));
    assertFailed(run, /Deployment\/failures\/web failed to roll out: pod web-[\w-]+, container web: CrashLoopBackOff \(test asked for CrashLoopBackOff\)/);
    assert.match(run.maskedOutput, /condition Ready=False/);
    assert.match(run.maskedOutput, /container web waiting: CrashLoopBackOff/);
    assert.match(run.maskedOutput, /warning events in namespace failures/);
  });

  test('a rollout that does not finish in rolloutTimeout fails naming the workload', async () => {
    const run = await deploy(manifestsInputs(await writeManifests('failures', { name: 'slow', podLabels: { stay: 'pending' }, replicas: 1 }), { rolloutTimeout: '4' }));
    assertFailed(run, /^Rollout timed out after 4 s: Deployment\/failures\/slow \(1 of 1 updated, 0 available\)/);
    assert.match(run.maskedOutput, /pod slow-[\w-]+ \(Pending/);
  });

  test('manifests that are not valid YAML or have no kind fail before anything is applied', async () => {
    const dir = join(work, 'bad-manifests');
    await mkdir(dir);
    await writeFile(join(dir, 'broken.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: [unclosed\n');
    await writeFile(join(dir, 'kindless.yaml'), 'apiVersion: v1\nmetadata:\n  name: nothing\n');
    assertFailed(await deploy(manifestsInputs(join(dir, 'broken.yaml'))), /^Input 'manifests': .*broken\.yaml is not valid YAML at line \d+: /);
    assertFailed(await deploy(manifestsInputs(join(dir, 'kindless.yaml'))), /^Input 'manifests': .*kindless\.yaml \(document 1\) has no kind\.$/);
  });

  test('a chart ref that does not exist fails with helm’s reason', async () => {
    const puller = env.addServicePrincipal('pull');
    const run = await deploy(
      { connectionType: 'kubeconfig', kubeconfigPath, azureSubscription: 'arm', namespace: 'failures', deployType: 'helm', chart: `oci://${env.registryHost}/helm/does-not-exist`, chartVersion: '9.9.9', releaseName: 'ghost' },
      { connections: { arm: armConnection(puller) } },
    );
    assertFailed(run, /^helm upgrade failed: .*(not found|does-not-exist)/);
  });

  test('RBAC denial names the verb, the resource and the namespace', async () => {
    const folder = await serviceAccountFolder('rbac', 'viewer', 'view');
    const run = await deploy({ connectionType: 'inCluster', authMode: 'none', deployType: 'manifests', manifests: await writeManifests('rbac') }, { env: inClusterEnv(folder) });
    assertFailed(run, /RBAC refused to apply .*User "system:serviceaccount:rbac:viewer" cannot patch resource "(configmaps|deployments|jobs)" in API group "[\w.]*" in the namespace "rbac"/);
  });

  test('a failed upgrade with atomic leaves the previous release in place and says why', async () => {
    await cluster.createServiceAccount('helm-atomic', 'ci');
    await cluster.kubectl(['create', 'rolebinding', 'ci-admin', '--clusterrole=admin', '--serviceaccount=helm-atomic:ci', '--namespace=helm-atomic']);
    const atomicKubeconfig = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken('helm-atomic', 'ci') });
    const puller = env.addServicePrincipal('pull');
    const connections = { arm: armConnection(puller) };
    const inputs = { connectionType: 'kubeconfig', kubeconfigPath: atomicKubeconfig, azureSubscription: 'arm', namespace: 'helm-atomic', deployType: 'helm', chart: chartRef, releaseName: 'tiny', timeout: '15s' };
    assertSucceeded(await deploy(inputs, { connections }));
    const failed = await deploy({ ...inputs, overrides: 'failWith=CrashLoopBackOff\ngreeting=broken' }, { connections });
    assertFailed(failed, /^helm upgrade failed: .*(rolled back|atomic)/);
    assert.match(failed.maskedOutput, /container app waiting: CrashLoopBackOff/);
    const env0 = await cluster.kubectl(['get', 'deployment', 'tiny-tiny', '--namespace=helm-atomic', '-o', 'jsonpath={.spec.template.spec.containers[0].env[0].value}']);
    assert.equal(env0, 'hello', 'the rollback restored the previous release');
    const history = JSON.parse((await runTool(testToolPath('helm'), ['history', 'tiny', '--namespace=helm-atomic', '--kubeconfig', cluster.adminKubeconfigPath, '-o', 'json'])).stdout) as { revision: number; status: string }[];
    assert.equal(history.at(-1)!.status, 'deployed');
    assert.equal(history.at(-1)!.revision, 3);
  });
});
