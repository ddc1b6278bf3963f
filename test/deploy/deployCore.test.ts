// The deploy core in process: argument and file building as tables, and the Entra path against the
// real test API server — an AKS-audience token is accepted, a token for another audience refused.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { createCredential, type TokenCredential } from '../../src/azure/entra.js';
import { helmUpgradeArgs, overridesToValues } from '../../src/deploy/helm.js';
import { loadManifests, parseImageSubstitutions, substituteImages } from '../../src/deploy/manifests.js';
import { shellCommand } from '../../src/deploy/runCommand.js';
import { zipFolder } from '../../src/archive/zip.js';
import { AuthenticationError, UserError } from '../../src/errors.js';
import { HttpTransport } from '../../src/http/transport.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { AKS_ENTRA_SCOPE, accessFromKubeconfig } from '../../src/kubernetes/access.js';
import { describeKubernetesError, openCluster } from '../../src/kubernetes/client.js';
import { createTestCa } from '../env/ca.js';
import { startEntra, type EntraStandIn } from '../env/entra.js';
import { runTool } from '../env/processes.js';
import { AKS_AUDIENCE, startControlPlane, type ControlPlane } from '../kube/controlPlane.js';

const noSecrets = { register() {} };

void describe('helm arguments', () => {
  const base = { releaseName: 'web', namespace: 'apps', chart: 'oci://r.example/helm/web', valueFiles: [], overrides: [], atomic: true, wait: true, timeoutSeconds: 300, createNamespace: false };
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
