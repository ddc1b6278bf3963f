// PrivateAcrImport@1 end to end: the bundled task, run as the agent runs it, copies from a "public"
// registry (a real distribution with its own CA and anonymous pulls, behind a fault proxy of its
// own) into the private one (real distribution with ACR-style token auth, behind the fault proxy);
// skopeo and oras check what arrived.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { startFaultProxy, type FaultProxy } from '../env/faults.js';
import { runTool } from '../env/processes.js';
import { startPublicRegistry, type PublicRegistry } from '../env/publicRegistry.js';
import { buildTrivyDb, publishTrivyDb } from '../env/trivyDb.js';
import { makeLayers, writeOciLayout } from '../fixtures/images.js';
import { TRIVY_DB_FIXTURES } from '../fixtures/vulnerableImage.js';
import { assertFailedWith, assertNoSecretPrinted, assertSucceeded, secretConnection } from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAcrImport';
const SBOM_TYPE = 'application/spdx+json';
let env: AcrEnvironment;
let source: PublicRegistry;
/** The public registry as the task reaches it: through a fault proxy of its own. */
let sourceProxy: FaultProxy;
let sourceHost: string;
let seeder: RegistryClientTrust;
let reader: RegistryClientTrust;
let work: string;
let caBundle: string;
let indexDigest: string;
let sbomDigest: string;

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

before(async () => {
  [env, source] = await Promise.all([startAcrEnvironment({ withFaultProxy: true }), startPublicRegistry()]);
  sourceProxy = await startFaultProxy({ ca: source.ca, target: source.registry.url });
  sourceHost = sourceProxy.host;
  work = await mkdtemp(join(tmpdir(), 'import-test-'));
  // The agent trusts both registries' CAs, as an agent would trust its estate's and the public roots.
  caBundle = join(work, 'ca-bundle.pem');
  await writeFile(caBundle, `${env.ca.caCertPem}\n${source.ca.caCertPem}`);
  seeder = await source.clientTrust(source.addUser());
  reader = await env.createClientTrust({ role: 'pull', host: env.registry.host });

  // A three-platform image with an SBOM attached to its index, as a public base image carries one.
  const layout = join(work, 'hello');
  indexDigest = (await writeOciLayout(layout, { layers: makeLayers(2, 256 * 1024, 7), platforms: ['amd64', 'arm64', 's390x'], nested: true, refName: '1.0' })).digest;
  await runTool('skopeo', ['copy', '--all', '--preserve-digests', ...registryTrustArgs.skopeoDestination(seeder), `oci:${layout}:1.0`, `docker://${source.host}/library/hello:1.0`]);
  const sbom = join(work, 'sbom.spdx.json');
  await writeFile(sbom, JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'hello', packages: [] }));
  const attached = await runTool(
    testToolPath('oras'),
    ['attach', ...registryTrustArgs.oras(seeder), '--artifact-type', SBOM_TYPE, '--format', 'go-template={{.digest}}', `${source.host}/library/hello@${indexDigest}`, `sbom.spdx.json:${SBOM_TYPE}`],
    { cwd: work, env: seeder.toolEnv },
  );
  sbomDigest = attached.stdout.trim();
  // The vulnerability database, published as ghcr.io/aquasecurity/trivy-db is.
  await publishTrivyDb(await buildTrivyDb(join(work, 'db'), { fixtures: TRIVY_DB_FIXTURES }), `${source.host}/aquasecurity/trivy-db:2`, seeder);
});

after(async () => {
  await sourceProxy?.stop();
  await Promise.all([env?.stop(), source?.stop()]);
  await rm(work, { recursive: true, force: true });
});

async function importImages(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
  const run = await runTask(TASK, {
    ...options,
    connections: { arm: secretConnection(env), ...options.connections },
    inputs: { azureSubscription: 'arm', registry: env.registryHost, ...inputs },
    env: { NODE_EXTRA_CA_CERTS: caBundle, ...options.env },
    timeoutMs: 180_000,
  });
  assertNoSecretPrinted(env, run);
  for (const secret of source.secrets()) assert.ok(!run.maskedOutput.includes(secret), 'a source registry secret was printed');
  return run;
}

/** The raw manifest the private registry serves for `reference` (`repository:tag` or `repository@digest`). */
async function targetManifest(reference: string): Promise<string> {
  return (await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/${reference}`])).stdout;
}

async function sourceManifest(reference: string): Promise<string> {
  return (await runTool('skopeo', ['inspect', '--raw', ...registryTrustArgs.skopeo(seeder), `docker://${source.host}/${reference}`])).stdout;
}

/** Blob and manifest writes the private registry received since `from` (an index into the proxy's log). */
function writesSince(from: number): string[] {
  return env.proxy!.requests.slice(from).filter((request) => ['POST', 'PATCH', 'PUT'].includes(request.method)).map((request) => `${request.method} ${request.path}`);
}

describe('imports a multi-platform image', () => {
  test('anonymously, byte for byte: the same index digest, every platform, and the SBOM attached to it', async () => {
    const run = await importImages({ images: `${sourceHost}/library/hello:1.0 mirror/hello:1.0` });
    assertSucceeded(run);
    assert.deepEqual(JSON.parse(run.outputs.digests), { [`${sourceHost}/library/hello:1.0`]: indexDigest });
    const raw = await targetManifest('mirror/hello:1.0');
    assert.equal(sha256(raw), indexDigest);
    assert.equal(raw, await sourceManifest('library/hello:1.0'));
    assert.equal((JSON.parse(raw) as { manifests: unknown[] }).manifests.length, 3);
    // skopeo reads every platform back and checks each blob against its digest.
    await runTool('skopeo', ['copy', '--all', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/mirror/hello:1.0`, `oci:${join(work, 'pulled-hello')}:1.0`]);
    // The SBOM is discoverable on the copy, as oras finds referrers on a registry without the referrers API.
    const discovered = await runTool(testToolPath('oras'), ['discover', ...registryTrustArgs.oras(reader), '--format', 'json', `${env.registry.host}/mirror/hello@${indexDigest}`], { env: reader.toolEnv });
    assert.match(discovered.stdout, new RegExp(sbomDigest));
    assert.match(discovered.stdout, /application\/spdx\+json/);
    assert.match(run.summaries.join('\n'), new RegExp(`\\| \`${sourceHost}/library/hello:1.0\` \\| \`${env.registryHost}/mirror/hello:1.0\` \\| \`${indexDigest}\` \\|.*\\| 1 \\|`));
    // Nobody logged in to the source: every token it issued was anonymous.
    assert.ok(source.tokenRequests.length > 0 && source.tokenRequests.filter((request) => request.username === undefined).length > 0);
  });

  test('again: nothing is uploaded or written', async () => {
    const from = env.proxy!.requests.length;
    const run = await importImages({ images: `${sourceHost}/library/hello:1.0 mirror/hello:1.0` });
    assertSucceeded(run);
    assert.deepEqual(writesSince(from), []);
    // 8 blobs of the image (2 shared layers, 3 own layers, 3 configs) and 2 of its SBOM: all there already.
    assert.match(run.summaries.join('\n'), /\| 0 \(0 B\) \| 0 \| 10 \| 1 \|/);
  });

  test('narrowed to one platform: a new index, and the run says so', async () => {
    const run = await importImages({ images: `${sourceHost}/library/hello:1.0 mirror/hello-arm:1.0`, platforms: 'linux/arm64' });
    assertSucceeded(run);
    const digest = (JSON.parse(run.outputs.digests) as Record<string, string>)[`${sourceHost}/library/hello:1.0`];
    assert.notEqual(digest, indexDigest);
    const index = JSON.parse(await targetManifest('mirror/hello-arm:1.0')) as { manifests: { platform: { architecture: string } }[] };
    assert.deepEqual(index.manifests.map((entry) => entry.platform.architecture), ['arm64']);
    assert.match(run.maskedOutput, new RegExp(`Keeping linux/arm64 of ${sourceHost}/library/hello:1\\.0: a new index ${digest} lists them \\(the source index is ${indexDigest}\\)`));
    assert.match(run.summaries.join('\n'), /Narrowed to linux\/arm64/);
  });

  test('from another repository of the private registry: blobs are mounted, not copied', async () => {
    const from = env.proxy!.requests.length;
    const run = await importImages({ images: `${env.registryHost}/mirror/hello:1.0 team/hello:1.0` });
    assertSucceeded(run);
    const writes = writesSince(from);
    // The image's 8 blobs and its SBOM's 2.
    assert.equal(writes.filter((write) => /^POST .*mount=sha256/.test(write)).length, 10, writes.join('\n'));
    assert.deepEqual(writes.filter((write) => /^(PATCH|PUT) .*\/blobs\/uploads\//.test(write)), [], 'no blob bytes were sent');
    assert.equal(sha256(await targetManifest('team/hello:1.0')), indexDigest);
  });
});

test('the Trivy database arrives with its manifest byte for byte', async () => {
  const run = await importImages({ images: `${sourceHost}/aquasecurity/trivy-db:2` });
  assertSucceeded(run);
  const raw = await targetManifest('aquasecurity/trivy-db:2');
  assert.equal(raw, await sourceManifest('aquasecurity/trivy-db:2'));
  assert.match(raw, /application\/vnd\.aquasec\.trivy\.db\.layer\.v1\.tar\+gzip/);
  assert.match(raw, /"org\.opencontainers\.image\.title":"db\.tar\.gz"/);
});

test('a copy interrupted on both sides completes with identical digests', async () => {
  const layout = join(work, 'big');
  const digest = (await writeOciLayout(layout, { layers: makeLayers(3, 3 * 1024 * 1024, 11), platforms: ['amd64', 'arm64'], nested: true, refName: '2.0' })).digest;
  await runTool('skopeo', ['copy', '--all', '--preserve-digests', ...registryTrustArgs.skopeoDestination(seeder), `oci:${layout}:2.0`, `docker://${source.host}/library/big:2.0`]);
  // A blob download from the source breaks off after 1 MiB, and an upload into the private registry after 1 MiB.
  const download = sourceProxy.inject({ method: 'GET', pathPattern: /\/blobs\/sha256:/, kind: 'cutResponse', afterResponseBodyBytes: 1024 * 1024 });
  const upload = env.proxy!.inject({ method: 'PUT', pathPattern: /\/blobs\/uploads\//, kind: 'reset', afterRequestBodyBytes: 1024 * 1024 });
  const run = await importImages({ images: `${sourceHost}/library/big:2.0 mirror/big:2.0` });
  assertSucceeded(run);
  assert.ok(download.fired && upload.fired, 'both faults struck');
  assert.equal(sha256(await targetManifest('mirror/big:2.0')), digest);
  await runTool('skopeo', ['copy', '--all', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/mirror/big:2.0`, `oci:${join(work, 'pulled-big')}:2.0`]);
});

describe('sources that need a login', () => {
  before(async () => {
    await runTool('skopeo', ['copy', '--all', '--preserve-digests', ...registryTrustArgs.skopeoDestination(seeder), `docker://${source.host}/library/hello:1.0`, `docker://${source.host}/team/private:1`, ...registryTrustArgs.skopeoSource(seeder)]);
    source.privateRepositories.add('team/private');
  });

  test('anonymously the source refuses, in one line naming it', async () => {
    const run = await importImages({ images: `${sourceHost}/team/private:1` });
    assertFailedWith(run, new RegExp(`${sourceHost.replace(/\./g, '\\.')}.*team/private`));
  });

  test('with sourceConnection the login is used for that registry only', async () => {
    const user = source.addUser();
    const run = await importImages(
      { images: `${sourceHost}/team/private:1 mirror/private:1`, sourceConnection: 'src' },
      { connections: { src: { scheme: 'UsernamePassword', url: `https://${sourceHost}`, parameters: { username: user.username, password: user.password } } } },
    );
    assertSucceeded(run);
    assert.equal(sha256(await targetManifest('mirror/private:1')), indexDigest);
    assert.ok(source.tokenRequests.some((request) => request.username === user.username));
    assert.ok(run.registeredSecrets.includes(user.password));
  });
});

describe('inputs a pipeline can get wrong', () => {
  const cases: [string, TaskRunOptions['inputs'], RegExp][] = [
    ['a source that does not exist', { images: 'SOURCE/library/nope:1' }, /^SOURCE\/library\/nope:1 does not exist \(MANIFEST_UNKNOWN\): check the repository and the tag or digest/],
    ['a source without tag or digest', { images: 'SOURCE/library/hello' }, /^Input 'images': 'SOURCE\/library\/hello' names no tag or digest/],
    ['a line with three words', { images: 'SOURCE/library/hello:1.0 a b' }, /^Input 'images': line 1 has 3 words/],
    ['no image at all', { images: '# nothing yet' }, /^Input 'images': lists no image/],
    ['a platform without architecture', { images: 'SOURCE/library/hello:1.0', platforms: 'linux' }, /^Input 'platforms': 'linux' is not a platform/],
    ['a platform the index lacks', { images: 'SOURCE/library/hello:1.0 mirror/none:1', platforms: 'windows/amd64' }, /^Input 'platforms': the index sha256:[0-9a-f]{64} has none of windows\/amd64; it has linux\/amd64, linux\/arm64, linux\/s390x\./],
    ['concurrency out of range', { images: 'SOURCE/library/hello:1.0', concurrency: '0' }, /^Input 'concurrency': '0' is not a whole number from 1 to 32\./],
  ];
  for (const [name, inputs, message] of cases) {
    test(name, async () => {
      const run = await importImages({ ...inputs, images: inputs.images.replaceAll('SOURCE', sourceHost) });
      assertFailedWith(run, new RegExp(message.source.replaceAll('SOURCE', sourceHost.replace(/\./g, '\\.'))));
    });
  }
});
