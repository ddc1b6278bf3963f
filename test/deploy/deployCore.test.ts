// The deploy core in process: argument, environment and script building as tables; the Entra path
// against the real test API server (an AKS-audience token is accepted, a token for another audience
// refused); helm's credential plug-in with kubectl as the client; and inCluster through the core's
// options (the service-account folder and server), which the bundled task cannot be pointed at.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { createCredential, type TokenCredential } from '../../src/azure/entra.js';
import { deployToCluster } from '../../src/deploy/deploy.js';
import { helmUpgradeArgs, overridesToValues } from '../../src/deploy/helm.js';
import { helmNetworkEnvironment, noProxyList } from '../../src/deploy/helmNetwork.js';
import { loadManifests, parseImageSubstitutions, substituteImages } from '../../src/deploy/manifests.js';
import { commandScript } from '../../src/deploy/runCommand.js';
import { shellCommand } from '../../src/shell.js';
import { zipFolder } from '../../src/archive/zip.js';
import { AuthenticationError, UserError } from '../../src/errors.js';
import { HttpTransport } from '../../src/http/transport.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { AKS_ENTRA_SCOPE, accessFromKubeconfig, inClusterAccess, type ClusterAccess } from '../../src/kubernetes/access.js';
import { describeKubernetesError, openCluster } from '../../src/kubernetes/client.js';
import { execCredential, startCredentialServer } from '../../src/kubernetes/credentialServer.js';
import { writeKubeconfig } from '../../src/kubernetes/kubeconfigFile.js';
import { createTestCa } from '../env/ca.js';
import { startEntra, type EntraStandIn } from '../env/entra.js';
import { testToolPath } from '../env/environment.js';
import { runTool, type ToolError } from '../env/processes.js';
import { AKS_AUDIENCE, startControlPlane, type ControlPlane } from '../kube/controlPlane.js';

const noSecrets = { register() {} };

void describe('helm arguments', () => {
  const base = { releaseName: 'web', namespace: 'apps', chart: 'oci://r.example/helm/web', valueFiles: [], overrides: [], atomic: true, timeoutSeconds: 300, createNamespace: false };
  const cases: [string, Partial<typeof base> & { chartVersion?: string }, string[]][] = [
    ['defaults', {}, ['upgrade', '--install', 'web', 'oci://r.example/helm/web', '--namespace', 'apps', '--output', 'json', '--atomic', '--wait', '--wait-for-jobs', '--timeout', '300s', '--kubeconfig', 'k', '--registry-config', 'r']],
    ['version, namespace creation, no atomic', { chartVersion: '1.2.3', createNamespace: true, atomic: false, timeoutSeconds: 60 }, ['upgrade', '--install', 'web', 'oci://r.example/helm/web', '--namespace', 'apps', '--output', 'json', '--version', '1.2.3', '--create-namespace', '--wait', '--wait-for-jobs', '--timeout', '60s', '--kubeconfig', 'k', '--registry-config', 'r']],
  ];
  for (const [name, options, expected] of cases) {
    test(name, () => assert.deepEqual(helmUpgradeArgs({ ...base, ...options }, { kubeconfig: 'k', registryConfig: 'r' }), expected));
  }
  test('value files come before the overrides file, so overrides win', () => {
    const args = helmUpgradeArgs({ ...base, valueFiles: ['a.yaml', 'b.yaml'] }, { overridesFile: 'o.yaml' });
    assert.deepEqual(args.filter((_, index) => args[index - 1] === '--values'), ['a.yaml', 'b.yaml', 'o.yaml']);
    assert.ok(!args.includes('--kubeconfig'), 'run-command pods bring their own kubeconfig');
  });
});

void describe('overrides as a values file', () => {
  const cases: [string, string[], unknown][] = [
    ['nesting and YAML scalars', ['image.tag=1.2.3', 'replicaCount=3', 'debug=true'], { image: { tag: '1.2.3' }, replicaCount: 3, debug: true }],
    ['escaped dots and values with = and spaces', ['annotations.example\\.com/owner=team a', 'db.url=postgres://u@h/db?x=1'], { annotations: { 'example.com/owner': 'team a' }, db: { url: 'postgres://u@h/db?x=1' } }],
    ['later lines win', ['a.b=1', 'a.b=2'], { a: { b: 2 } }],
  ];
  for (const [name, lines, expected] of cases) test(name, () => assert.deepEqual(parse(overridesToValues(lines)), expected));
  test('a line without = is refused naming the input', () => assert.throws(() => overridesToValues(['novalue']), /Input 'overrides': 'novalue…' is not key=value\./));
});

void describe('manifests and images', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'manifests-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('List objects are flattened, empty documents skipped, images of every container kind replaced', async () => {
    const file = join(dir, 'app.yaml');
    await writeFile(file, `---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: batch/v1\n  kind: CronJob\n  metadata: { name: nightly }\n  spec: { jobTemplate: { spec: { template: { spec: { initContainers: [{ name: i, image: "r.example:5000/team/web:old" }], containers: [{ name: c, image: "r.example:5000/team/web@sha256:${'0'.repeat(64)}" }] } } } } }\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec: { template: { spec: { containers: [{ name: c, image: other.example/x:1 }] } } }\n`);
    const manifests = await loadManifests([file]);
    assert.deepEqual(manifests.map(({ object }) => object.kind), ['CronJob', 'Deployment']);
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (message) => warnings.push(message) };
    const replaced = substituteImages(manifests, parseImageSubstitutions(['r.example:5000/team/web:2.0', 'r.example:5000/team/nothing:1']), logger);
    assert.equal(replaced, 2);
    assert.match(JSON.stringify(manifests[0].object), /"image":"r\.example:5000\/team\/web:2\.0".*"image":"r\.example:5000\/team\/web:2\.0"/);
    assert.deepEqual(warnings, ["Input 'images': r.example:5000/team/nothing:1 matches no container image in the manifests (repository r.example:5000/team/nothing)."]);
  });

  test('an image line without tag or digest is refused', () => {
    assert.throws(() => parseImageSubstitutions(['r.example:5000/team/web']), /Input 'images': 'r\.example:5000\/team\/web' has no tag or digest/);
  });

  test('objects without metadata.name are refused with file and document', async () => {
    const file = join(dir, 'nameless.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n');
    await assert.rejects(loadManifests([file]), /nameless\.yaml \(document 1\) \(ConfigMap\) has no metadata\.name/);
  });
});

void describe('run-command context and command line', () => {
  test('the zip unpacks with unzip to the same files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zip-'));
    try {
      await mkdir(join(dir, 'src', 'chart'), { recursive: true });
      await writeFile(join(dir, 'src', 'manifests.yaml'), 'kind: ConfigMap\n');
      await writeFile(join(dir, 'src', 'chart', 'values.yaml'), Buffer.alloc(100_000, 'x'));
      await writeFile(join(dir, 'context.zip'), await zipFolder(join(dir, 'src')));
      await runTool('unzip', ['-q', 'context.zip', '-d', 'out'], { cwd: dir });
      const listing = (await runTool('unzip', ['-Z1', 'context.zip'], { cwd: dir })).stdout.trim().split('\n').sort();
      assert.deepEqual(listing, ['chart/values.yaml', 'manifests.yaml']);
      assert.equal((await runTool('cat', [join(dir, 'out', 'chart', 'values.yaml')])).stdout.length, 100_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('arguments are quoted for the shell', () => {
    assert.equal(shellCommand('helm', ['upgrade', "it's", 'a b', '--set=x']), `helm upgrade 'it'\\''s' 'a b' --set=x`);
  });
});

void describe('Entra tokens at the API server', () => {
  let dir: string;
  let entra: EntraStandIn;
  let cluster: ControlPlane;
  let http: HttpTransport;
  let credential: TokenCredential;
  let kubeconfig: string;
  const clientId = randomUUID();
  const secret = randomUUID();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deploy-entra-'));
    const ca = await createTestCa(join(dir, 'ca'));
    entra = await startEntra({ ca });
    const app = entra.addSecretClient(clientId, secret);
    cluster = await startControlPlane({ dir: join(dir, 'cluster'), ca, oidc: { issuerUrl: `${entra.url}/${entra.tenantId}/v2.0`, audience: AKS_AUDIENCE, caPem: ca.caCertPem } });
    await cluster.kubectl(['create', 'rolebinding', 'entra-view', '--clusterrole=view', `--user=${app.objectId}`, '--namespace=default']);
    http = new HttpTransport({ caCertificates: [ca.caCertPem] });
    credential = createCredential({ kind: 'clientSecret', authorityUrl: entra.authorityUrl, tenantId: entra.tenantId, clientId, clientSecret: secret }, http, noSecrets);
    // What listClusterUserCredential returns for an Entra-enabled cluster: a user that runs kubelogin.
    kubeconfig = JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'aks',
      clusters: [{ name: 'aks', cluster: { server: cluster.server, 'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64') } }],
      contexts: [{ name: 'aks', context: { cluster: 'aks', user: 'u' } }],
      users: [{ name: 'u', user: { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: 'kubelogin', args: ['get-token', '--server-id', AKS_AUDIENCE] } } }],
    });
  });

  after(async () => {
    await http?.close();
    await cluster?.stop();
    await entra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('an AKS-audience token fetched in process is accepted, with no kubelogin', async () => {
    const access = accessFromKubeconfig(kubeconfig, { entra: credential, secrets: noSecrets, source: 'test kubeconfig' });
    const client = openCluster(access, 'default');
    try {
      const pods = await client.core.listNamespacedPod({ namespace: 'default' });
      assert.deepEqual(pods.items, []);
    } finally {
      client.close();
    }
    assert.ok(entra.tokenRequests.some((request) => request.clientId === clientId && request.scope === AKS_ENTRA_SCOPE && request.status === 200));
  });

  test('a token for another audience is refused by the API server with a 401 naming the server', async () => {
    const wrongAudience: TokenCredential = { getToken: () => credential.getToken('https://management.core.windows.net//.default') };
    const access = accessFromKubeconfig(kubeconfig, { entra: wrongAudience, secrets: noSecrets, source: 'test kubeconfig' });
    const client = openCluster(access, 'default');
    try {
      const error = await client.core.listNamespacedPod({ namespace: 'default' }).then(() => undefined, (reason: unknown) => describeKubernetesError(reason, 'list pods', access));
      assert.ok(error instanceof AuthenticationError, String(error));
      assert.match(error.message, new RegExp(`^The API server ${cluster.server.replace(/[.]/g, '\\.')} did not accept the credentials of test kubeconfig \\(context aks\\) \\(HTTP 401\\)`));
    } finally {
      client.close();
    }
  });

  test('without an Entra credential a kubelogin user is refused before any request', () => {
    assert.throws(() => accessFromKubeconfig(kubeconfig, { secrets: noSecrets, source: 'kubeconfig file k' }), (error: unknown) => error instanceof UserError && /signs in with kubelogin, which this task does not run/.test(error.message));
  });
});

void describe("helm's environment for the agent's network settings", () => {
  const cases: [string, string[], string[], string[], string][] = [
    ['the API server is always direct; a known host is direct when the bypass list matches it', ['contoso\\.azurecr\\.io:5000'], ['10.0.0.1:443'], ['contoso.azurecr.io:5000', 'login.example'], '10.0.0.1,contoso.azurecr.io'],
    ['bypass patterns that are host names or domains become entries', ['^https://.*\\.corp\\.example$', 'github\\.com', 'https?://registry\\.example/'], [], [], '.corp.example,github.com,registry.example'],
    ['any other pattern covers the known hosts it matches, as the agent matches https://host[:port]', ['^https://(acr1|acr2)\\.example/'], [], ['acr1.example', 'acr3.example'], 'acr1.example'],
    ['no bypass list: only the API server', [], ['[fd00::1]:6443'], ['r.example'], 'fd00::1'],
  ];
  for (const [name, bypass, direct, other, expected] of cases) test(name, () => assert.equal(noProxyList(bypass, direct, other), expected));

  test('the agent CA goes into an SSL_CERT_FILE bundle beside the usual roots, the proxy into every variable Go reads', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'helm-network-'));
    try {
      const ca = '-----BEGIN CERTIFICATE-----\nAGENT\n-----END CERTIFICATE-----';
      const changes = await helmNetworkEnvironment({
        transport: { caCertificates: [ca], proxy: { url: 'http://proxy.example:3128', username: 'build agent', password: 'p@ss:w/rd', bypass: ['contoso\\.azurecr\\.io'] } },
        folder,
        directHosts: ['10.0.0.1:443'],
        otherHosts: [],
      });
      assert.equal(changes.SSL_CERT_FILE, join(folder, 'ca-bundle.pem'));
      const bundle = await readFile(join(folder, 'ca-bundle.pem'), 'utf8');
      assert.ok(bundle.endsWith(ca) && bundle.split('BEGIN CERTIFICATE').length > 100, 'the bundle lacks the agent CA or the roots');
      assert.equal((await stat(join(folder, 'ca-bundle.pem'))).mode & 0o777, 0o600);
      const proxy = 'http://build%20agent:p%40ss%3Aw%2Frd@proxy.example:3128/';
      assert.deepEqual({ ...changes, SSL_CERT_FILE: undefined }, {
        SSL_CERT_FILE: undefined, https_proxy: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, HTTP_PROXY: proxy, no_proxy: '10.0.0.1,contoso.azurecr.io', NO_PROXY: '10.0.0.1,contoso.azurecr.io',
      });
      assert.deepEqual(await helmNetworkEnvironment({ folder, directHosts: ['10.0.0.1:443'], otherHosts: [] }), {}, 'without agent settings helm keeps its environment');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});

void describe('run-command script', () => {
  test('the refused step is the last line, after every diagnostic ran though they are refused too; later steps never run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'run-command-script-'));
    try {
      await mkdir(join(dir, 'bin'));
      // A kubectl that RBAC refuses everything but rollout status, and notes what it was asked to do.
      await writeFile(
        join(dir, 'bin', 'kubectl'),
        `#!/bin/sh\necho "$*" >> calls\ncase "$1" in\n  apply) echo 'Warning: first line' >&2; echo 'Error from server (Forbidden): apply refused' >&2; exit 1;;\n  get) echo "Error from server (Forbidden): $2 is forbidden" >&2; exit 1;;\nesac\n`,
        { mode: 0o755 },
      );
      const script = commandScript(
        [
          { label: 'kubectl apply', program: 'kubectl', args: ['apply', '-f', 'manifests.yaml'] },
          { label: 'kubectl rollout status deployment/web', program: 'kubectl', args: ['rollout', 'status', 'deployment/web'] },
        ],
        [
          { label: 'pods in namespace web', program: 'kubectl', args: ['get', 'pods'] },
          { label: "warning events in namespace 'web'", program: 'kubectl', args: ['get', 'events'] },
        ],
      );
      const failure = await runTool('sh', ['-c', script], { cwd: dir, env: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` } }).then(
        () => assert.fail('the script succeeded'),
        (error: ToolError) => error,
      );
      assert.equal(failure.exitCode, 1);
      assert.equal(failure.stdout.trim().split('\n').at(-1), 'kubectl apply failed: Error from server (Forbidden): apply refused');
      assert.match(failure.stdout, /--- pods in namespace web\n--- warning events in namespace 'web'\n/);
      assert.match(failure.stderr, /pods is forbidden[\s\S]*events is forbidden/);
      assert.deepEqual((await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n'), ['apply -f manifests.yaml', 'get pods', 'get events']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

void describe('ExecCredential for helm', () => {
  test('ExecCredential expiry: five minutes before a token’s own, or half its remaining life when that is shorter', async () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const jwt = (exp: number) => `e30.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.sig`;
    const bearer = (token: string): ClusterAccess => ({ server: 'https://k', description: 'test', credentials: { kind: 'bearer', token: () => Promise.resolve(token) } });
    const expiry = async (token: string) => ((await execCredential(bearer(token), now)) as { status: { expirationTimestamp?: string } }).status.expirationTimestamp;
    assert.equal(await expiry(jwt(now / 1000 + 3600)), '2030-01-01T12:55:00Z');
    assert.equal(await expiry(jwt(now / 1000 + 10)), '2030-01-01T12:00:05Z');
    assert.equal(await expiry('static-token'), undefined, 'a token without expiry is kept until a 401');
  });
});

void describe("helm's credential plug-in, and inCluster through the core's options, against the real API server", () => {
  const plugin = { command: process.execPath, args: [join(import.meta.dirname, '..', '..', 'dist', 'extension', 'tasks', 'PrivateAksDeploy', 'kubeCredential.js')] };
  let dir: string;
  let cluster: ControlPlane;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'deploy-in-cluster-'));
    cluster = await startControlPlane({ dir: join(dir, 'cluster'), ca: await createTestCa(join(dir, 'ca')) });
    await cluster.createNamespace('apps');
    for (const [name, role] of [['deployer', 'admin'], ['reader', 'view']]) {
      await cluster.createServiceAccount('apps', name);
      await cluster.kubectl(['create', 'rolebinding', `${name}-${role}`, `--clusterrole=${role}`, `--serviceaccount=apps:${name}`, '--namespace=apps']);
    }
  });

  after(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('kubectl signs in through the plug-in with the token the folder holds now; the kubeconfig holds no credential', async () => {
    const folder = await cluster.writeInClusterFolder('apps', 'deployer');
    const access = await inClusterAccess({ folder, server: cluster.server });
    const work = await mkdtemp(join(dir, 'plugin-'));
    const server = await startCredentialServer(access, work);
    const kubeconfig = join(work, 'kubeconfig');
    const whoami = () => cluster.kubectl(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig });
    try {
      await writeKubeconfig(kubeconfig, access, 'apps', plugin, server.socketPath);
      assert.equal((await stat(kubeconfig)).mode & 0o777, 0o600);
      assert.equal((await stat(work)).mode & 0o777, 0o700, 'the socket folder is private');
      const user = (parse(await readFile(kubeconfig, 'utf8')) as { users: { user: Record<string, unknown> }[] }).users[0].user;
      assert.deepEqual(Object.keys(user), ['exec']);
      assert.ok(!JSON.stringify(user).includes((await readFile(join(folder, 'token'), 'utf8')).trim()));
      assert.equal(await whoami(), 'system:serviceaccount:apps:deployer');
      // The kubelet rotates the token file; the next credential is what it holds then.
      await writeFile(join(folder, 'token'), await cluster.mintServiceAccountToken('apps', 'reader'));
      assert.equal(await whoami(), 'system:serviceaccount:apps:reader');
    } finally {
      await server.close();
    }
    const ended = await whoami().then(() => assert.fail('kubectl signed in after the server closed'), (error: ToolError) => error);
    assert.match(ended.stderr, /kube-credential: cannot get a credential from .*kube-credential\.sock: the deploy task that serves it has ended/);
  });

  test('a failing credential is one line on helm’s stderr, never a token', async () => {
    const failing: ClusterAccess = { server: cluster.server, caPem: cluster.caPem, description: 'test', credentials: { kind: 'bearer', token: () => Promise.reject(new UserError('Entra refused the client (AADSTS7000215)')) } };
    const work = await mkdtemp(join(dir, 'plugin-'));
    const server = await startCredentialServer(failing, work);
    try {
      await writeKubeconfig(join(work, 'kubeconfig'), failing, 'apps', plugin, server.socketPath);
      const failure = await cluster.kubectl(['get', 'pods'], { kubeconfig: join(work, 'kubeconfig') }).then(() => assert.fail('kubectl succeeded'), (error: ToolError) => error);
      assert.match(failure.stderr, new RegExp(`kube-credential: cannot get a credential for ${cluster.server.replace(/[.]/g, '\\.')}: Entra refused the client \\(AADSTS7000215\\)`));
    } finally {
      await server.close();
    }
  });

  test('deployToCluster with connection inCluster: manifests and a chart, namespace from the folder, nothing left behind', async () => {
    const folder = await cluster.writeInClusterFolder('apps', 'deployer');
    const tempDir = await mkdtemp(join(dir, 'agent-temp-'));
    const connection = { kind: 'inCluster', folder, server: cluster.server } as const;
    const common = { connection, tempDir, credentialPlugin: plugin, helmPath: testToolPath('helm'), logger: silentLogger, secrets: noSecrets };
    await writeFile(join(dir, 'settings.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { mode: manifests }\n');
    const applied = await deployToCluster({ ...common, deployment: { kind: 'manifests', files: [join(dir, 'settings.yaml')], images: [], rolloutTimeoutSeconds: 30 } });
    assert.equal(applied.namespace, 'apps');
    assert.deepEqual(applied.appliedObjects, ['ConfigMap/apps/settings']);
    assert.equal(applied.connection, 'inCluster: the agent pod’s service account');
    assert.equal(applied.cluster, cluster.server);

    const chart = join(dir, 'chart');
    await mkdir(join(chart, 'templates'), { recursive: true });
    await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: settings\nversion: 1.0.0\n');
    await writeFile(join(chart, 'values.yaml'), 'mode: chart\n');
    await writeFile(join(chart, 'templates', 'configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: chart-settings }\ndata: { mode: {{ .Values.mode | quote }} }\n');
    const release = { releaseName: 'settings', chart, valueFiles: [], overrides: ['mode=from overrides'], atomic: true, timeoutSeconds: 60, createNamespace: false };
    const released = await deployToCluster({ ...common, deployment: { kind: 'helm', release } });
    assert.deepEqual(released.release, { name: 'settings', revision: 1 });
    assert.equal(await cluster.kubectl(['get', 'configmap', 'chart-settings', '--namespace=apps', '-o', 'jsonpath={.data.mode}']), 'from overrides');
    assert.deepEqual(await readdir(tempDir), []);
  });
});
