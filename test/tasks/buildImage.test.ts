// PrivateAcrBuildImage@1 end to end: the bundled task, run as the agent runs it, builds on a base
// in the real registry (token auth behind the Azure stand-ins, requests counted by the fault proxy)
// and pushes; skopeo checks what landed and buildah runs it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ACR_REFRESH_TOKEN_USERNAME } from '../env/acr.js';
import { startAcrEnvironment, registryTrustArgs, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { runTool, type ToolError } from '../env/processes.js';
import { startRegistry } from '../env/registry.js';
import { pushBase, writeBusyboxBase } from '../fixtures/baseImages.js';
import { folderWith } from '../fixtures/files.js';
import { imageContents } from '../support/imageFiles.js';
import { assertFailedWith, assertNoSecretPrinted, assertSucceeded, secretConnection } from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const run = promisify(execFile);
const TASK = 'PrivateAcrBuildImage';
const DEMO_APP = join(import.meta.dirname, '..', '..', 'demo', 'app');
let env: AcrEnvironment;
let work: string;
let reader: RegistryClientTrust;
let base: string;
let multiBase: string;
let baseLayers: string[];

before(async () => {
  env = await startAcrEnvironment({ withFaultProxy: true });
  work = await mkdtemp(join(tmpdir(), 'build-image-test-'));
  reader = await env.createClientTrust({ role: 'push', host: env.registry.host });
  await writeBusyboxBase(join(work, 'base'));
  await pushBase(join(work, 'base'), reader, 'base/busybox', '1', { dockerMediaTypes: true });
  await writeBusyboxBase(join(work, 'multi'), { architectures: ['amd64', 'arm64'] });
  await pushBase(join(work, 'multi'), reader, 'base/multi', '1');
  base = `${env.registryHost}/base/busybox:1`;
  multiBase = `${env.registryHost}/base/multi:1`;
  const raw = JSON.parse(await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/base/busybox:1`])) as { layers: { digest: string }[] };
  baseLayers = raw.layers.map((layer) => layer.digest);
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

async function skopeo(args: string[]): Promise<string> {
  return (await runTool('skopeo', args, { timeoutMs: 60_000 })).stdout;
}

/** A build context with these files (the Dockerfile among them). */
function context(files: Record<string, string>): Promise<string> {
  return folderWith(work, files);
}

async function build(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun> {
  const result = await runTask(TASK, {
    ...options,
    connections: options.connections ?? { arm: secretConnection(env) },
    inputs: { azureSubscription: 'arm', registry: env.registryHost, repository: 'team/app', tags: '1.0.0', ...inputs },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath, ...options.env },
    timeoutMs: 180_000,
  });
  assertNoSecretPrinted(env, result);
  return result;
}

async function servedDigest(repository: string, tag: string): Promise<string | undefined> {
  const raw = await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/${repository}:${tag}`]).catch(() => undefined);
  return raw === undefined ? undefined : `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

/** The Go demo program compiled as a pipeline's script step would, with its Dockerfile beside it. */
async function demoContext(): Promise<string> {
  const dir = await mkdtemp(join(work, 'demo-'));
  await run('go', ['build', '-trimpath', '-ldflags=-s', '-o', join(dir, 'server'), '.'], { cwd: DEMO_APP, env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' } });
  for (const file of ['Dockerfile', '.dockerignore']) await cp(join(DEMO_APP, file), join(dir, file));
  return dir;
}

describe('builds and pushes', () => {
  test('the image runs: buildah pulls what the task pushed and its entrypoint prints what the program prints', async () => {
    const dir = await demoContext();
    const proxyRequestsBefore = env.proxy!.requests.length;
    const result = await build({ dockerfile: join(dir, 'Dockerfile'), buildArgs: `BASE=${base}`, tags: '1.0.0\nlatest', labels: 'team=web' }, { variables: { 'Build.Repository.Uri': 'https://dev.azure.com/contoso/web/_git/web', 'Build.SourceVersion': 'abc123' } });
    assertSucceeded(result);
    const digest = result.outputs.digest;
    assert.match(digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(result.outputs.imageRef, `${env.registryHost}/team/app@${digest}`);
    assert.equal(await servedDigest('team/app', '1.0.0'), digest);
    assert.equal(await servedDigest('team/app', 'latest'), digest);
    assert.match(result.summaries[0], /Image built and pushed/);

    // Base layers are mounted, never uploaded: one mount per base layer, no upload of their bytes.
    const requests = env.proxy!.requests.slice(proxyRequestsBefore);
    for (const layer of baseLayers) {
      assert.ok(requests.some((request) => request.method === 'POST' && request.path.includes(`mount=${encodeURIComponent(layer)}`) && request.status === 201), `no mount of ${layer}`);
      assert.ok(!requests.some((request) => request.path.includes(`digest=${encodeURIComponent(layer)}`) || request.path.includes(`digest=${layer}`)), `${layer} was uploaded`);
    }
    // One token, scoped for both repositories, made the mount possible.
    assert.ok(env.tokenServer.requests.some((request) => request.scopes.includes('repository:team/app:pull,push') && request.scopes.includes('repository:base/busybox:pull')));

    const storage = ['--root', join(work, 'buildah', 'root'), '--runroot', join(work, 'buildah', 'run'), '--storage-driver', 'vfs'];
    const container = (await runTool('buildah', [...storage, 'from', '--quiet', '--cert-dir', reader.certDir, '--authfile', reader.authFile, `docker://${env.registry.host}/team/app@${digest}`], { timeoutMs: 120_000 })).stdout.trim();
    try {
      const inspect = JSON.parse((await runTool('buildah', [...storage, 'inspect', container])).stdout) as { OCIv1: { config: { Entrypoint: string[]; User: string; Labels: Record<string, string> } } };
      const config = inspect.OCIv1.config;
      assert.deepEqual(config.Entrypoint, ['/app/server']);
      assert.equal(config.User, '65534:65534');
      assert.equal(config.Labels.team, 'web');
      assert.equal(config.Labels['org.opencontainers.image.source'], 'https://dev.azure.com/contoso/web/_git/web');
      assert.equal(config.Labels['org.opencontainers.image.revision'], 'abc123');
      assert.equal(config.Labels['org.opencontainers.image.base.name'], `${env.registryHost}/base/busybox:1`);
      // buildah's last stderr line says only "exit status 1"; the whole of it says why.
      const output = await runTool('buildah', [...storage, 'run', '--isolation', 'chroot', container, '--', ...config.Entrypoint, '--version']).catch((error: ToolError) => {
        throw new Error(`${error.message}: ${error.stderr}`);
      });
      assert.equal(output.stdout.trim(), 'demo web 1.0.0');
    } finally {
      await runTool('buildah', [...storage, 'rm', container]).catch(() => undefined);
    }
  });

  test('a rebuild after one file changes compresses and uploads only that layer', async () => {
    const dir = await context({ Dockerfile: `FROM ${base}\nWORKDIR /app\nCOPY deps/ ./deps/\nCOPY code/ ./code/\n`, 'deps/lib.js': 'lib\n'.repeat(5000), 'code/main.js': 'v1\n' });
    // A persistent agent keeps its work folder, and with it what earlier builds learned about the layers.
    const agentWork = await mkdtemp(join(work, 'agent-work-'));
    const rebuild = () => build({ dockerfile: join(dir, 'Dockerfile'), repository: 'team/rebuilt', tags: 'latest' }, { variables: { 'Agent.WorkFolder': agentWork } });
    const first = await rebuild();
    assertSucceeded(first);
    await writeFile(join(dir, 'code/main.js'), 'v2\n');
    const before = env.proxy!.requests.length;
    const second = await rebuild();
    assertSucceeded(second);
    const uploads = env.proxy!.requests.slice(before).filter((request) => request.method === 'PUT' && /\/blobs\/uploads\//.test(request.path));
    assert.equal(uploads.length, 2, 'the changed layer and the new config');
    assert.match(second.maskedOutput, /COPY deps\/ \.\/deps\/: unchanged since the image the tags point at/);
    assert.match(second.maskedOutput, /Wrote 1 layer\(s\)/);
    assert.notEqual(second.outputs.digest, first.outputs.digest);

    // Same size, same modification time, other bytes: the change time still tells, and the layer is written again.
    const stamp = new Date('2030-01-01T00:00:00Z');
    await utimes(join(dir, 'code/main.js'), stamp, stamp);
    const third = await rebuild();
    await writeFile(join(dir, 'code/main.js'), 'v3\n');
    await utimes(join(dir, 'code/main.js'), stamp, stamp);
    const fourth = await rebuild();
    assertSucceeded(fourth);
    assert.match(fourth.maskedOutput, /Wrote 1 layer\(s\)/);
    assert.notEqual(fourth.outputs.digest, third.outputs.digest);
  });

  test('a base in another registry the identity can read: its layers stream across and the image is whole', async () => {
    // A shared registry of golden images behind the same token service and tenant, as a second ACR would be.
    const golden = await startRegistry({ ca: env.ca, tokenServer: env.tokenServer, dir: await mkdtemp(join(work, 'golden-')) });
    try {
      const seeder = env.addServicePrincipal('push');
      const seederTrust = await env.clientTrustFor({ username: ACR_REFRESH_TOKEN_USERNAME, password: await env.acrRefreshToken(seeder, golden.service), host: golden.host });
      await pushBase(join(work, 'base'), seederTrust, 'golden/busybox', '1', { dockerMediaTypes: true });
      const dir = await context({ Dockerfile: `FROM ${golden.host}/golden/busybox:1\nCOPY a /a\n`, a: 'a\n' });
      const before = env.proxy!.requests.length;
      const result = await build({ dockerfile: join(dir, 'Dockerfile'), repository: 'team/from-golden' });
      assertSucceeded(result);
      assert.equal(await servedDigest('team/from-golden', '1.0.0'), result.outputs.digest);
      // Each base layer was uploaded into the target (no mount can cross registries) ...
      const requests = env.proxy!.requests.slice(before);
      for (const layer of baseLayers) {
        assert.ok(requests.some((request) => request.method === 'PUT' && request.path.includes(`digest=${encodeURIComponent(layer)}`) && request.status === 201), `${layer} was not uploaded`);
      }
      // ... and skopeo, which checks every blob against its digest, copies the whole image out.
      await skopeo(['copy', '--quiet', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/team/from-golden@${result.outputs.digest}`, `oci:${join(work, 'from-golden')}:x`]);
      const contents = await imageContents(join(work, 'from-golden'));
      assert.ok(contents.files.some((line) => line.startsWith('bin/busybox\t')), 'the base layer is in the image');
      assert.ok(contents.files.some((line) => line.startsWith('a\t')), 'the built layer is in the image');
    } finally {
      await golden.stop();
    }
  });

  test('several platforms: each from the base\'s matching manifest, into one index; outputPath holds the same image', async () => {
    const dir = await context({ Dockerfile: `FROM ${multiBase}\nCOPY app.txt /app.txt\n`, 'app.txt': 'app\n' });
    const layout = join(work, 'multi-layout');
    const result = await build({ dockerfile: join(dir, 'Dockerfile'), repository: 'team/multi', platforms: 'linux/amd64, linux/arm64', outputPath: layout });
    assertSucceeded(result);
    const index = JSON.parse(await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/team/multi:1.0.0`])) as { mediaType: string; manifests: { platform: { architecture: string } }[] };
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(index.manifests.map((entry) => entry.platform.architecture), ['amd64', 'arm64']);
    const layoutIndex = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(layoutIndex.manifests[0].digest, result.outputs.digest);
    for (const architecture of ['amd64', 'arm64']) {
      const contents = await imageContents(layout, architecture);
      assert.ok(contents.files.some((line) => line.startsWith(`etc/platform\t`)));
      assert.equal(contents.config.architecture, architecture);
    }
  });
});

describe('one clear line and no tag moved', () => {
  const failures: [string, () => Promise<TaskRunOptions['inputs']>, RegExp][] = [
    ['RUN', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${base}\nRUN make\n` }), 'Dockerfile') }), /^Dockerfile:2: RUN needs a container runtime, which the assemble builder does not do/],
    ['a missing base', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${env.registryHost}/base/missing:1\n` }), 'Dockerfile') }), /^Dockerfile:1: the base image .*base\/missing:1 does not exist/],
    ['a platform the base lacks', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${multiBase}\n` }), 'Dockerfile'), platforms: 'linux/ppc64le' }), /has no linux\/ppc64le image/],
    ['a missing COPY source', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${base}\nCOPY nothing /\n` }), 'Dockerfile') }), /^Dockerfile:2: COPY source nothing was not found in the build context/],
    ['an unknown target', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${base} AS app\n` }), 'Dockerfile'), target: 'tests' }), /^Input 'target': the Dockerfile has no stage named 'tests'/],
    ['a bad buildArgs line', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${base}\n` }), 'Dockerfile'), buildArgs: 'GOOD=1\njust words' }), /^Input 'buildArgs': line 2 \('just words'\) is not NAME=value/],
    ['the BuildKit builder', async () => ({ dockerfile: join(await context({ Dockerfile: `FROM ${base}\n` }), 'Dockerfile'), builder: 'buildkit' }), /^Input 'buildkitAddress': is empty, and the BuildKit builder needs its daemon's address/],
  ];
  for (const [name, inputs, message] of failures) {
    test(name, async () => {
      const before = await servedDigest('team/stable', '1.0.0');
      assertFailedWith(await build({ ...(await inputs()), repository: 'team/stable' }), message);
      assert.equal(await servedDigest('team/stable', '1.0.0'), before);
    });
  }

  test('a symbolic link leaving the context', async () => {
    const dir = await context({ Dockerfile: `FROM ${base}\nCOPY config /etc/app/\n` });
    await symlink('/etc/hostname', join(dir, 'config'));
    assertFailedWith(await build({ dockerfile: join(dir, 'Dockerfile'), repository: 'team/stable' }), /the symbolic link config → \/etc\/hostname in the build context points outside it/);
  });

  test('a base the identity cannot read', async () => {
    const limited = env.addServicePrincipal('push', { repositories: ['team/limited'] });
    const connection = { scheme: 'ServicePrincipal', parameters: { serviceprincipalid: limited.clientId, serviceprincipalkey: limited.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' }, data: { environmentAuthorityUrl: env.entra.authorityUrl } };
    const dir = await context({ Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'a' });
    assertFailedWith(await build({ dockerfile: join(dir, 'Dockerfile'), repository: 'team/limited' }, { connections: { arm: connection } }), /refused .*base\/busybox.*may not pull/);
    assert.equal(await servedDigest('team/limited', '1.0.0'), undefined);
  });
});
