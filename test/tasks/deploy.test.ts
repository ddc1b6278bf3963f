// PrivateAksDeploy@1 end to end: the bundled task, run as the agent runs it, deploys into the real
// test API server (etcd, kube-apiserver, controllers; a fake kubelet runs the pods) through every
// connection type, with a chart that real helm pushed into the test registry behind the Entra and
// ACR stand-ins. The ARM stand-in in front serves AKS credentials and runs run-command with real
// kubectl and helm, isolated from the agent's files. One environment for the file; one namespace
// per test. (inCluster with a mounted service account is tested through the core's options, in
// test/deploy/deployCore.test.ts: the task reads the folder a pod has.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ARM_MANAGEMENT_AUDIENCE, startAksArm, type AksArmStandIn } from '../arm/aksArm.js';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment, type ServicePrincipal } from '../env/environment.js';
import { runTool } from '../env/processes.js';
import { startForwardProxy } from '../env/proxy.js';
import { startRegistry } from '../env/registry.js';
import { startAcrTokenServer } from '../env/acr.js';
import { AKS_AUDIENCE, kubeToolPath, startControlPlane, type ControlPlane } from '../kube/controlPlane.js';
import { startFakeKubelet, type FakeKubelet } from '../kube/fakeKubelet.js';
import { assertNoSecretPrinted } from '../support/registryIdentities.js';
import { runTask, type ServiceConnection, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAksDeploy';
const NAMESPACES = ['helm-values', 'kubeconfig', 'service-connection', 'arm', 'run-command', 'run-command-refused', 'failures', 'rbac', 'helm-atomic', 'cancel', 'token-expiry', 'agent-network'];
const FIELD_MANAGER = 'private-aks-acr-pipelines';

let env: AcrEnvironment;
let cluster: ControlPlane;
let kubelet: FakeKubelet;
let arm: AksArmStandIn;
let work: string;
let chartRef: string;

/**
 * A chart whose pods the fake kubelet fails when `failWith` is set (via a pod label), never starts
 * with the pod label `stay: pending`, and starts after N seconds with `ready-after: "N"` (`podLabels`).
 */
async function writeChart(dir: string): Promise<void> {
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: "1.0"\n');
  await writeFile(join(dir, 'values.yaml'), 'replicaCount: 1\nimage: registry.example/team/tiny:1.0\nfailWith: ""\ngreeting: hello\npodLabels: {}\n');
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
        {{- with .Values.podLabels }}
        {{- toYaml . | nindent 8 }}
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
      const readyAfter = pod.metadata.labels?.['ready-after'];
      if (readyAfter) return { readyAfterMs: Number(readyAfter) * 1000 };
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

/** A kubeconfig (token user) for a service account bound to a cluster role in its namespace. */
async function serviceAccountKubeconfig(namespace: string, name: string, clusterRole: string): Promise<string> {
  await cluster.createServiceAccount(namespace, name);
  await cluster.kubectl(['create', 'rolebinding', `${name}-${clusterRole}`, `--clusterrole=${clusterRole}`, `--serviceaccount=${namespace}:${name}`, `--namespace=${namespace}`]);
  return cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken(namespace, name) });
}

/**
 * What a run left in the agent's temp folder besides the run summaries (which the agent uploads
 * after the task) and task-lib's `.taskkey` (the random key of its in-memory secret vault, shared
 * by every task of the job).
 */
function filesLeft(run: TaskRun): string[] {
  return run.tempFilesLeft.filter((file) => file !== '.taskkey' && !/^PrivateAksDeploy-summary-\d+\.md$/.test(file));
}

/** Resolves once `check` does, polling; fails after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Processes whose command line mentions `text` (helm's names the agent temp folder of its run). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    const commandLine = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      } catch {
        return '';
      }
    })();
    if (commandLine.includes(text)) found.push(`${pid}: ${commandLine}`);
  }
  return found;
}

/** The machine's first non-loopback IPv4 address: Go clients such as helm never proxy loopback. */
function externalIPv4(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === 'IPv4' && !address.internal)?.address;
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
  test('on an agent without a mounted service-account token it fails naming the folder', async (t) => {
    if (existsSync('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt')) return t.skip('this machine is a pod with a service account');
    const run = await deploy({ connectionType: 'inCluster', authMode: 'none', deployType: 'manifests', manifests: await writeManifests('rbac') });
    assertFailed(run, /^Cannot read \/var\/run\/secrets\/kubernetes\.io\/serviceaccount\/ca\.crt \(ENOENT\): connectionType inCluster works only on an agent that runs in the cluster/);
    assert.deepEqual(filesLeft(run), []);
  });
});

void describe('PrivateAksDeploy manifests and charts', () => {
  test('applies manifests server-side, substitutes images, waits for the rollout and reports appliedObjects', async () => {
    const kubeconfigPath = await serviceAccountKubeconfig('helm-values', 'deployer', 'edit');
    const run = await deploy({
      connectionType: 'kubeconfig', kubeconfigPath, authMode: 'none', namespace: 'helm-values', deployType: 'manifests', manifests: await writeManifests('helm-values'), images: 'contoso.azurecr.io/team/web:1.0.0\ncontoso.azurecr.io/team/unused:2', rolloutTimeout: '60',
    });
    assertSucceeded(run);
    assert.equal(run.outputs.appliedObjects, `ConfigMap/helm-values/web-config,Deployment/helm-values/web,Job/helm-values/migrate-${manifestCounter}`);
    assert.match(run.maskedOutput, /Deployment\/helm-values\/web: rolled out \(2 available\)/);
    assert.match(run.maskedOutput, /Job\/helm-values\/migrate-\d+: complete/);
    assert.equal(run.summaries.length, 1);
    assert.match(run.summaries[0], /\| Connection \| kubeconfig: kubeconfig file .* \(context \w+\) \|/);
    assert.match(run.summaries[0], new RegExp(`\\| Cluster \\| ${cluster.server.replace(/[.]/g, '\\.')} \\|`));
    assert.match(run.summaries[0], /\| Namespace \| `helm-values` \|/);
    assert.match(run.summaries[0], /\| Applied \| 3 object\(s\): `ConfigMap\/helm-values\/web-config`, `Deployment\/helm-values\/web`, `Job\/helm-values\/migrate-\d+` \|/);
    assert.match(run.summaries[0], /\| Time \| \d+\.\d s \|/);
    assert.ok(run.warnings.some((warning) => /contoso\.azurecr\.io\/team\/unused:2 matches no container image/.test(warning)), run.warnings.join('\n'));
    const deployment = await kubectlJson<{ spec: { template: { spec: { containers: { image: string }[] } } }; metadata: { managedFields: { manager: string; operation: string }[] } }>(['get', 'deployment', 'web', '--namespace=helm-values', '--show-managed-fields']);
    assert.equal(deployment.spec.template.spec.containers[0].image, 'contoso.azurecr.io/team/web:1.0.0');
    assert.ok(deployment.metadata.managedFields.some((field) => field.manager === FIELD_MANAGER && field.operation === 'Apply'));
  });

  test('installs an OCI chart from the registry with Entra auth, values and overrides; releaseRevision counts upgrades', async () => {
    const kubeconfigPath = await serviceAccountKubeconfig('helm-values', 'helm-deployer', 'admin');
    const puller = env.addServicePrincipal('pull');
    const connections = { arm: armConnection(puller) };
    const values = join(work, 'helm-values.yaml');
    await writeFile(values, 'replicaCount: 2\n');
    const inputs = { connectionType: 'kubeconfig', kubeconfigPath, azureSubscription: 'arm', deployType: 'helm', chart: chartRef, chartVersion: '0.1.0', releaseName: 'tiny', namespace: 'helm-values', valueFiles: values, overrides: 'greeting=from overrides' };
    const first = await deploy(inputs, { connections });
    assertSucceeded(first);
    assert.equal(first.outputs.releaseRevision, '1');
    assert.match(first.summaries[0], /\| Release \| `tiny` revision 1 \|/);
    assert.deepEqual(filesLeft(first), []);
    const deployment = await kubectlJson<{ spec: { replicas: number; template: { spec: { containers: { env: { value: string }[] }[] } } }; status: { readyReplicas: number } }>(['get', 'deployment', 'tiny-tiny', '--namespace=helm-values']);
    assert.equal(deployment.spec.replicas, 2);
    assert.equal(deployment.status.readyReplicas, 2);
    assert.equal(deployment.spec.template.spec.containers[0].env[0].value, 'from overrides');
    assert.ok(!helmArgvMentions(first, 'from overrides'), 'overrides stay off helm argv');
    const second = await deploy(inputs, { connections });
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

  });

  test('a helm deploy with valueFiles and overrides sends them in the context; the command sees nothing else of the agent', async () => {
    const connections = { arm: armConnection(principal) };
    const values = join(work, 'run-command-values.yaml');
    await writeFile(values, 'replicaCount: 2\ngreeting: from values\n');
    const chart = await deploy(
      { connectionType: 'runCommand', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'run-command', deployType: 'helm', chart: chartRef, chartVersion: '0.1.0', releaseName: 'tiny', valueFiles: values, overrides: 'greeting=from overrides' },
      { connections },
    );
    assertSucceeded(chart);
    assert.equal(chart.outputs.releaseRevision, '1');
    const record = arm.runCommands.at(-1)!;
    assert.deepEqual(record.files.sort(), ['0-tiny-0.1.0.tgz', '1-run-command-values.yaml', 'overrides.yaml']);
    assert.ok(!record.command.includes(tmpdir()), `the command names a path on the agent: ${record.command}`);
    const deployment = await kubectlJson<{ spec: { replicas: number; template: { spec: { containers: { env: { value: string }[] }[] } } } }>(['get', 'deployment', 'tiny-tiny', '--namespace=run-command']);
    assert.equal(deployment.spec.replicas, 2, 'the value file was applied');
    assert.equal(deployment.spec.template.spec.containers[0].env[0].value, 'from overrides', 'the overrides won over the value file');
    assert.match(chart.summaries[0], /\| Connection \| runCommand: AKS run-command as the service connection \|/);
    assert.match(chart.summaries[0], /\| Cluster \| AKS cluster 'aks-private' in resource group 'rg-apps' \|/);
  });

  test('a kubectl step the cluster refuses is the error line, and the pods and events are still asked for', async () => {
    // The principal has no role at all in this namespace: apply, get pods and get events are all refused.
    const connections = { arm: armConnection(principal) };
    const run = await deploy(
      { connectionType: 'runCommand', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'run-command-refused', deployType: 'manifests', manifests: await writeManifests('run-command-refused') },
      { connections },
    );
    assertFailed(run, new RegExp(`exited with code 1: kubectl apply failed: Error from server \\(Forbidden\\): .*User "${principal.objectId}" cannot patch resource "\\w+" in API group "[\\w.]*" in the namespace "run-command-refused"`));
    assert.match(run.maskedOutput, /--- pods in namespace run-command-refused\n[^\n]*pods is forbidden/);
    assert.match(run.maskedOutput, /--- warning events in namespace run-command-refused\n[^\n]*events is forbidden/);
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
    const kubeconfigPath = await serviceAccountKubeconfig('rbac', 'viewer', 'view');
    const run = await deploy({ connectionType: 'kubeconfig', kubeconfigPath, authMode: 'none', namespace: 'rbac', deployType: 'manifests', manifests: await writeManifests('rbac') });
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

void describe('PrivateAksDeploy while helm waits', () => {
  test('cancelled as the agent cancels (SIGINT) in the middle of helm --wait: helm stops and no file is left in the agent temp folder', async () => {
    const kubeconfigPath = await serviceAccountKubeconfig('cancel', 'ci', 'admin');
    const puller = env.addServicePrincipal('pull');
    let tempDir = '';
    const run = await deploy(
      // Pods that never start keep helm in its --wait; the overrides, the registry login and the kubeconfig are on disk meanwhile.
      { connectionType: 'kubeconfig', kubeconfigPath, azureSubscription: 'arm', namespace: 'cancel', deployType: 'helm', chart: chartRef, releaseName: 'tiny', overrides: 'podLabels.stay=pending\ngreeting=cancelled', timeout: '120s' },
      {
        connections: { arm: armConnection(puller) },
        whileRunning: async (task) => {
          tempDir = task.tempDir;
          await until('helm to create the deployment', async () => (await cluster.kubectl(['get', 'deployments', '--namespace=cancel', '-o', 'name'])).includes('deployment.apps/tiny-tiny'));
          assert.ok(readdirSync(task.tempDir, { recursive: true, encoding: 'utf8' }).some((file) => file.endsWith('overrides.yaml')), 'the overrides file exists while helm waits');
          task.kill('SIGINT');
        },
      },
    );
    assertFailed(run, /^Cancelled \(SIGINT\)/);
    assert.equal(run.exitCode, 1);
    assert.deepEqual(filesLeft(run), []);
    assert.deepEqual(processesMentioning(tempDir), [], 'helm is still running');
  });

  test('a --wait that outlives the first Entra token succeeds: helm asks the task for a fresh one through the credential plug-in', async () => {
    const principal = env.addServicePrincipal('pull');
    arm.grant(principal.objectId);
    await cluster.kubectl(['create', 'rolebinding', 'entra-deployer', '--clusterrole=admin', `--user=${principal.objectId}`, '--namespace=token-expiry']);
    const issuedBefore = env.entra.issuedTokens.length;
    const lifetimeSeconds = 10;
    env.entra.accessTokenLifetimeSeconds = lifetimeSeconds;
    try {
      const run = await deploy(
        // The pod turns ready 30 s in: past the first token's expiry and the API server's 10 s token cache.
        { connectionType: 'azureResourceManager', azureSubscription: 'arm', resourceGroup: 'rg-apps', cluster: 'aks-private', namespace: 'token-expiry', deployType: 'helm', chart: chartRef, releaseName: 'tiny', overrides: 'podLabels.ready-after="30"', timeout: '120s' },
        { connections: { arm: armConnection(principal) } },
      );
      assertSucceeded(run);
      assert.equal(run.outputs.releaseRevision, '1');
      const aksTokens = env.entra.issuedTokens.slice(issuedBefore).filter((issued) => issued.claims.aud === AKS_AUDIENCE && issued.claims.oid === principal.objectId);
      const first = aksTokens[0].claims.exp!;
      assert.ok(aksTokens.some((issued) => issued.claims.iat! > first), 'no token was fetched after the first one expired');
      assert.ok(Date.now() / 1000 > first + 20, 'the wait ended before the first token expired');
    } finally {
      env.entra.accessTokenLifetimeSeconds = 3600;
    }
  });
});

void describe("helm gets the agent's network settings", () => {
  test('a registry behind a private CA (Agent.CAInfo) and reached through the agent proxy, unless the bypass list names it', async (t) => {
    const address = externalIPv4();
    if (!address) return t.skip('no non-loopback IPv4 address: helm never proxies loopback');
    // The registry and its token server on that address (helm accepts a private realm host only when it is the registry's).
    const tokenServer = await startAcrTokenServer({ ca: env.ca, entra: env.entra, address });
    const registry = await startRegistry({ ca: env.ca, tokenServer, dir: join(work, 'registry-external'), address });
    const proxy = await startForwardProxy({ dir: join(work, 'proxy'), username: 'deploy', password: randomBytes(12).toString('hex') });
    try {
      const pushPassword = randomBytes(12).toString('hex');
      tokenServer.addUser('pusher', pushPassword, 'push');
      const pusher = await env.clientTrustFor({ username: 'pusher', password: pushPassword, host: registry.host });
      const [packaged] = await readdir(join(work, 'packaged'));
      await runTool(testToolPath('helm'), ['push', join(work, 'packaged', packaged), `oci://${registry.host}/helm`, ...registryTrustArgs.helm(pusher)], { env: pusher.toolEnv });
      const kubeconfigPath = await serviceAccountKubeconfig('agent-network', 'ci', 'admin');
      const puller = env.addServicePrincipal('pull');
      tokenServer.addPrincipal(puller.objectId, 'pull');
      const variables = { 'Agent.CAInfo': env.ca.caCertPath, 'Agent.ProxyUrl': proxy.url, 'Agent.ProxyUsername': proxy.username, 'Agent.ProxyPassword': proxy.password };
      const inputs = { connectionType: 'kubeconfig', kubeconfigPath, azureSubscription: 'arm', namespace: 'agent-network', deployType: 'helm', chart: `oci://${registry.host}/helm/tiny`, releaseName: 'tiny' };
      // Neither node nor helm trusts the test CA but through the agent's certificate setting.
      const options = { connections: { arm: armConnection(puller) }, env: { NODE_EXTRA_CA_CERTS: '', SSL_CERT_FILE: '' } };

      const proxied = await deploy(inputs, { ...options, variables });
      assertSucceeded(proxied);
      assert.ok(!proxied.maskedOutput.includes(proxy.password), 'the proxy password was printed');
      const tunnels = await proxy.tunnels();
      // The task itself opens one tunnel to the registry, for its challenge; helm's pull needs its own.
      assert.ok(tunnels.filter((tunnel) => tunnel === registry.host).length >= 2, `helm did not reach the registry through the proxy: ${tunnels.join(', ')}`);

      const bypassed = await deploy(inputs, { ...options, variables: { ...variables, 'Agent.ProxyBypassList': JSON.stringify([`^https://${address.replaceAll('.', '\\.')}`]) } });
      assertSucceeded(bypassed);
      assert.equal(bypassed.outputs.releaseRevision, '2');
      assert.deepEqual((await proxy.tunnels()).slice(tunnels.length).filter((tunnel) => tunnel.startsWith(`${address}:`)), [], 'the bypassed registry went through the proxy');
    } finally {
      await proxy.stop();
      await registry.stop();
      await tokenServer.stop();
    }
  });
});
