// PrivateAcrPushChart@1 end to end: the bundled task, run as the agent runs it, pushes charts into
// the real registry behind the Azure stand-ins; a real helm (built from its Go module) pulls, shows
// and renders what landed, and pushes the same chart itself for comparison. One environment.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { runTool, type ToolError } from '../env/processes.js';
import {
  agentManagedIdentity,
  agentWorkloadIdentity,
  assertFailedWith,
  assertNoSecretPrinted,
  assertSucceeded,
  certificateIdentity,
  federatedIdentity,
  managedIdentityConnection,
  registryTokenIdentity,
  secretConnection,
  type RegistryIdentity,
} from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAcrPushChart';
const SAMPLE_CHART = join(import.meta.dirname, '..', 'fixtures', 'charts', 'web');
const SAMPLE_VERSION = '1.2.3-rc.1+build.7';
let env: AcrEnvironment;
let work: string;
let reader: RegistryClientTrust;
let pusher: RegistryClientTrust;

before(async () => {
  env = await startAcrEnvironment({ withFaultProxy: true });
  work = await mkdtemp(join(tmpdir(), 'push-chart-test-'));
  reader = await env.createClientTrust({ role: 'pull' });
  pusher = await env.createClientTrust({ role: 'push' });
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

/** Runs the task as a push-capable service principal unless `options` brings its own identity. */
async function push(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
  const run = await runTask(TASK, {
    ...options,
    connections: options.connections ?? { arm: secretConnection(env) },
    inputs: { azureSubscription: 'arm', registry: env.registryHost, ...inputs },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath, ...options.env },
  });
  assertNoSecretPrinted(env, run);
  return run;
}

async function helm(args: string[], trust: RegistryClientTrust = reader): Promise<string> {
  const registryArgs = /^oci:/.test(args.find((arg) => arg.startsWith('oci:')) ?? '') || args[0] === 'push' ? registryTrustArgs.helm(trust) : [];
  return (await runTool(testToolPath('helm'), [...args, ...registryArgs], { env: trust.toolEnv, timeoutMs: 60_000 })).stdout;
}

interface Manifest {
  schemaVersion: number;
  config: { mediaType: string; digest: string; size: number };
  layers: { mediaType: string; digest: string; size: number }[];
  annotations: Record<string, string>;
}

/** The manifest bytes the registry serves for `repository:tag`, with their digest. */
async function servedManifest(repository: string, tag: string): Promise<{ manifest: Manifest; digest: string }> {
  const raw = (await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registryHost}/${repository}:${tag}`], { timeoutMs: 60_000 })).stdout;
  return { manifest: JSON.parse(raw) as Manifest, digest: `sha256:${createHash('sha256').update(raw).digest('hex')}` };
}

async function servedBlob(repository: string, digest: string): Promise<Buffer> {
  const target = join(await mkdtemp(join(work, 'blob-')), 'blob');
  await runTool(testToolPath('oras'), ['blob', 'fetch', ...registryTrustArgs.oras(reader), '--output', target, `${env.registryHost}/${repository}@${digest}`], { env: reader.toolEnv });
  return readFile(target);
}

/** Registry traffic (through the proxy) during `action`. */
async function registryRequestsDuring(action: () => Promise<void>): Promise<{ method: string; path: string }[]> {
  const before = env.proxy!.requests.length;
  await action();
  return env.proxy!.requests.slice(before);
}

/** A chart folder from a map of relative paths to contents. */
async function writeChart(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(work, 'chart-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/** The sample chart asks for Kubernetes >= 1.28; `helm template` assumes 1.20 unless told. */
const TEMPLATE_ARGS = ['--include-crds', '--kube-version', '1.30.0'];

const chartYaml = (fields: string) => `apiVersion: v2\nname: demo\nversion: 0.1.0\n${fields}`;

describe('a chart helm can pull, show and render', () => {
  let run: TaskRun;
  let pulledArchive: string;

  before(async () => {
    run = await push({ chartPath: SAMPLE_CHART, repository: 'charts' });
    assertSucceeded(run);
    const target = await mkdtemp(join(work, 'pulled-'));
    await helm(['pull', `oci://${env.registryHost}/charts/web`, '--version', SAMPLE_VERSION, '--destination', target]);
    const [name] = await readdir(target);
    pulledArchive = join(target, name);
  });

  test('outputs, tag with + as _, and the digest the registry serves', async () => {
    assert.equal(run.outputs.chartRef, `oci://${env.registryHost}/charts/web`);
    assert.equal(run.outputs.chartVersion, SAMPLE_VERSION);
    const served = await servedManifest('charts/web', '1.2.3-rc.1_build.7');
    assert.equal(run.outputs.digest, served.digest);
    assert.match(run.summaries.join('\n'), new RegExp(served.digest));
    assert.match(pulledArchive, /web-1\.2\.3-rc\.1\+build\.7\.tgz$/);
  });

  test('helm show chart gives the source chart', async () => {
    const shown = parse(await helm(['show', 'chart', `oci://${env.registryHost}/charts/web`, '--version', SAMPLE_VERSION])) as unknown;
    assert.deepEqual(shown, parse(await helm(['show', 'chart', SAMPLE_CHART])));
  });

  test('helm template of the pulled chart renders exactly what the source folder renders', async () => {
    const fromSource = await helm(['template', 'rel', SAMPLE_CHART, ...TEMPLATE_ARGS]);
    const fromPulled = await helm(['template', 'rel', pulledArchive, ...TEMPLATE_ARGS]);
    assert.equal(fromPulled, fromSource);
    // The subchart, the CRD and a file read by a template all made it.
    assert.match(fromPulled, /kind: StatefulSet/);
    assert.match(fromPulled, /kind: CustomResourceDefinition/);
    assert.match(fromPulled, /port = 8080/);
  });

  test('the values schema travels with the chart and is enforced', async () => {
    await assert.rejects(helm(['template', 'rel', pulledArchive, ...TEMPLATE_ARGS, '--set', 'replicaCount=0']), (error: ToolError) => /'\/replicaCount': minimum/.test(error.stderr));
  });

  test('.helmignore and the default templates/.?* rule keep files out', async () => {
    const entries = (await runTool('tar', ['-tzf', pulledArchive])).stdout.trim().split('\n').sort();
    assert.deepEqual(entries, [
      'web/.helmignore',
      'web/Chart.lock',
      'web/Chart.yaml',
      'web/README.md',
      'web/charts/cache/Chart.yaml',
      'web/charts/cache/templates/statefulset.yaml',
      'web/charts/cache/values.yaml',
      'web/crds/widgets.yaml',
      'web/files/app.ini',
      'web/templates/NOTES.txt',
      'web/templates/_helpers.tpl',
      'web/templates/configmap.yaml',
      'web/templates/deployment.yaml',
      'web/values.schema.json',
      'web/values.yaml',
    ]);
  });
});

describe('the same artifact as helm push', () => {
  let helmArchive: string;
  before(async () => {
    const target = await mkdtemp(join(work, 'helm-package-'));
    await helm(['package', SAMPLE_CHART, '--destination', target]);
    helmArchive = join(target, `web-${SAMPLE_VERSION}.tgz`);
    await helm(['push', helmArchive, `oci://${env.registryHost}/by-helm`], pusher);
  });

  test('a folder: same media types, layer count, annotation keys and config as helm package + helm push', async () => {
    assertSucceeded(await push({ chartPath: SAMPLE_CHART, repository: 'by-task' }));
    const tag = '1.2.3-rc.1_build.7';
    const [byHelm, byTask] = [(await servedManifest('by-helm/web', tag)).manifest, (await servedManifest('by-task/web', tag)).manifest];
    assert.deepEqual(Object.keys(byTask).sort(), Object.keys(byHelm).sort());
    assert.equal(byTask.config.mediaType, 'application/vnd.cncf.helm.config.v1+json');
    assert.equal(byTask.config.mediaType, byHelm.config.mediaType);
    assert.deepEqual(
      byTask.layers.map((layer) => layer.mediaType),
      byHelm.layers.map((layer) => layer.mediaType),
    );
    assert.deepEqual(Object.keys(byTask.annotations).sort(), Object.keys(byHelm.annotations).sort());
    // Values too, except `created`: helm takes the archive's mtime, the task a fixed time.
    const withoutCreated = (annotations: Record<string, string>) => Object.entries(annotations).filter(([key]) => key !== 'org.opencontainers.image.created');
    assert.deepEqual(withoutCreated(byTask.annotations), withoutCreated(byHelm.annotations));
    // The config is Chart.yaml's metadata exactly as Go's json.Marshal writes it: same bytes, same digest.
    assert.equal(byTask.config.digest, byHelm.config.digest);
  });

  test('a packaged .tgz with its .prov goes up as is, with the provenance layer, as helm push sends it', async () => {
    const folder = await mkdtemp(join(work, 'signed-'));
    const archive = join(folder, `web-${SAMPLE_VERSION}.tgz`);
    await cp(helmArchive, archive);
    await writeFile(`${archive}.prov`, '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nstand-in provenance\n');
    await helm(['push', archive, `oci://${env.registryHost}/signed-by-helm`], pusher);
    assertSucceeded(await push({ chartPath: archive, repository: 'signed-by-task' }));
    const tag = '1.2.3-rc.1_build.7';
    const [byHelm, byTask] = [(await servedManifest('signed-by-helm/web', tag)).manifest, (await servedManifest('signed-by-task/web', tag)).manifest];
    assert.equal(byTask.layers.length, 2);
    assert.deepEqual(byTask.layers, byHelm.layers, 'same chart and provenance blobs, in the same (digest) order');
    assert.deepEqual(byTask.config, byHelm.config);
    const chartLayer = byTask.layers.find((layer) => layer.mediaType === 'application/vnd.cncf.helm.chart.content.v1.tar+gzip')!;
    assert.deepEqual(await servedBlob('signed-by-task/web', chartLayer.digest), await readFile(archive));
  });
});

describe('reproducible packaging', () => {
  test('the same folder twice, even copied with new times, gives the same digest and uploads nothing new', async () => {
    const first = await push({ chartPath: SAMPLE_CHART, repository: 'repro' });
    assertSucceeded(first);
    const copy = join(await mkdtemp(join(work, 'copy-')), 'web');
    await cp(SAMPLE_CHART, copy, { recursive: true, preserveTimestamps: false });
    let second: TaskRun | undefined;
    const requests = await registryRequestsDuring(async () => {
      second = await push({ chartPath: copy, repository: 'repro' });
    });
    assertSucceeded(second!);
    assert.equal(second!.outputs.digest, first.outputs.digest);
    assert.deepEqual(requests.filter((request) => request.method === 'POST' || request.method === 'PATCH'), []);
  });

  test('chartVersion and appVersion overrides land in the chart and the tag', async () => {
    const run = await push({ chartPath: SAMPLE_CHART, repository: 'overrides', chartVersion: '2.0.0+ci.5', appVersion: 'build-5' });
    assertSucceeded(run);
    assert.equal(run.outputs.chartVersion, '2.0.0+ci.5');
    const shown = parse(await helm(['show', 'chart', `oci://${env.registryHost}/overrides/web`, '--version', '2.0.0+ci.5'])) as { version: string; appVersion: string };
    assert.equal(shown.version, '2.0.0+ci.5');
    assert.equal(shown.appVersion, 'build-5');
    assert.equal((await servedManifest('overrides/web', '2.0.0_ci.5')).digest, run.outputs.digest);
  });
});

describe('charts Helm 3 packages, pushed as helm package would package them', () => {
  /** Pushes `chartPath`, pulls it back with helm and returns the pulled archive's entries. */
  async function pushAndPull(chartPath: string, name: string, version: string): Promise<{ archive: string; entries: string[] }> {
    assertSucceeded(await push({ chartPath, repository: 'helm3' }));
    const target = await mkdtemp(join(work, 'pulled-'));
    await helm(['pull', `oci://${env.registryHost}/helm3/${name}`, '--version', version, '--destination', target]);
    const archive = join(target, `${name}-${version}.tgz`);
    return { archive, entries: (await runTool('tar', ['-tzf', archive])).stdout.trim().split('\n').sort() };
  }

  test('apiVersion v1 with requirements.yaml: pushed with its requirements files, and helm renders the subchart', async () => {
    const chartPath = await writeChart({
      'Chart.yaml': 'apiVersion: v1\nname: legacy\nversion: 0.3.0\n',
      'requirements.yaml': 'dependencies:\n  - name: sub\n    version: 0.1.0\n    repository: file://charts/sub\n',
      'values.yaml': 'sub:\n  greeting: hello\n',
      'templates/cm.yaml': 'kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: legacy\n',
      'charts/sub/Chart.yaml': 'apiVersion: v1\nname: sub\nversion: 0.1.0\n',
      'charts/sub/templates/cm.yaml': 'kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: sub\ndata:\n  greeting: {{ .Values.greeting }}\n',
    });
    const { archive, entries } = await pushAndPull(chartPath, 'legacy', '0.3.0');
    assert.ok(entries.includes('legacy/requirements.yaml'));
    assert.equal(await helm(['template', 'rel', archive]), await helm(['template', 'rel', chartPath]));
    assert.match(await helm(['template', 'rel', archive]), /greeting: hello/);
  });

  test('a link out of the chart that .helmignore excludes is skipped, as helm skips it', async () => {
    const chartPath = await writeChart({ 'Chart.yaml': 'apiVersion: v2\nname: linked\nversion: 0.1.0\n', '.helmignore': 'host-file\n', 'templates/cm.yaml': 'kind: ConfigMap\n' });
    await symlink('/etc/hostname', join(chartPath, 'host-file'));
    const { entries } = await pushAndPull(chartPath, 'linked', '0.1.0');
    assert.deepEqual(entries, ['linked/.helmignore', 'linked/Chart.yaml', 'linked/templates/cm.yaml']);
  });
});

describe('every identity of the image task pushes charts', () => {
  const identities: [string, () => Promise<RegistryIdentity> | RegistryIdentity][] = [
    ['service principal with a secret', () => ({ inputs: { azureSubscription: 'arm' }, options: { connections: { arm: secretConnection(env) } } })],
    ['service principal with a certificate', () => certificateIdentity(env)],
    ['workload identity federation', () => federatedIdentity(env)],
    ['managed identity connection', () => managedIdentityConnection(env)],
    ['agent identity: user-assigned managed identity', () => agentManagedIdentity(env)],
    ['agent identity: AKS workload identity', () => agentWorkloadIdentity(env, work)],
    ['registry credentials: repository-scoped token', () => registryTokenIdentity(env, ['identities/web'])],
  ];
  for (const [index, [name, makeIdentity]] of identities.entries()) {
    test(name, async () => {
      const identity = await makeIdentity();
      const version = `1.0.${index}`;
      const run = await push({ chartPath: SAMPLE_CHART, repository: 'identities', chartVersion: version, ...identity.inputs }, identity.options);
      assertSucceeded(run);
      assert.equal((await servedManifest('identities/web', version)).digest, run.outputs.digest);
    });
  }
});

describe('clear one-line errors, and nothing reaches the registry', () => {
  /** The chart problems of the issue, each with the single error line it must produce. */
  const cases: [string, () => Promise<Record<string, string>>, RegExp][] = [
    ['no Chart.yaml', async () => ({ chartPath: await writeChart({ 'values.yaml': 'a: 1\n' }) }), /^Input 'chartPath': .*: has no Chart\.yaml; point chartPath at the folder that holds Chart\.yaml/],
    ['invalid YAML', async () => ({ chartPath: await writeChart({ 'Chart.yaml': 'apiVersion: v2\nname: [demo\nversion: 0.1.0\n' }) }), /Chart\.yaml: invalid YAML: .*line \d+/],
    ['no version', async () => ({ chartPath: await writeChart({ 'Chart.yaml': 'apiVersion: v2\nname: demo\n' }) }), /Chart\.yaml: chart\.metadata\.version is required; add a SemVer 2 version/],
    [
      'a version that is not full SemVer 2',
      async () => ({ chartPath: await writeChart({ 'Chart.yaml': 'apiVersion: v2\nname: demo\nversion: "1.0"\n' }) }),
      /Chart\.yaml: chart\.metadata\.version "1\.0" is invalid; this task pushes only full SemVer 2 versions/,
    ],
    ['name: .', async () => ({ chartPath: await writeChart({ 'Chart.yaml': 'apiVersion: v2\nname: .\nversion: 0.1.0\n' }) }), /Chart\.yaml: chart\.metadata\.name "\." is not allowed; give the chart a name/],
    [
      'a dependency with no chart in charts/',
      async () => ({ chartPath: await writeChart({ 'Chart.yaml': chartYaml('dependencies:\n  - name: redis\n    version: 1.0.0\n    repository: https://charts.example.com\n') }) }),
      /Chart\.yaml: lists dependencies with no chart in charts\/: redis; run 'helm dependency build'/,
    ],
    [
      'a file over 5 MiB',
      async () => ({ chartPath: await writeChart({ 'Chart.yaml': chartYaml(''), 'files/big.bin': Buffer.alloc(5 * 1024 * 1024 + 1) }) }),
      /files\/big\.bin is 5\.0 MiB, over Helm's 5 MiB limit for a chart file/,
    ],
    [
      'a symlink out of the chart folder',
      async () => {
        const chartPath = await writeChart({ 'Chart.yaml': chartYaml('') });
        await symlink('/etc/hostname', join(chartPath, 'templates-host'));
        return { chartPath };
      },
      /symbolic link templates-host points outside the chart folder \(to \/etc\/hostname\); copy that content into the chart, or list the link in \.helmignore\./,
    ],
    ['a chartVersion override that is not SemVer', () => Promise.resolve({ chartPath: SAMPLE_CHART, chartVersion: 'v1.2' }), /^Input 'chartVersion': 'v1\.2' is not SemVer 2/],
    ['a chartPath that does not exist', () => Promise.resolve({ chartPath: join(work, 'no-such-chart') }), /^Input 'chartPath': .*no-such-chart does not exist/],
  ];
  for (const [name, makeInputs, pattern] of cases) {
    test(name, async () => {
      const inputs = await makeInputs();
      let run: TaskRun | undefined;
      const requests = await registryRequestsDuring(async () => {
        run = await push({ repository: 'failures', ...inputs });
      });
      assertFailedWith(run!, pattern);
      assert.deepEqual(requests, [], 'the chart is checked before any registry request');
    });
  }
});
