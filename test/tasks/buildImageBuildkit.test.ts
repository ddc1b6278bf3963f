// PrivateAcrBuildImage@1 with the BuildKit builder, end to end: the bundled task, run as the agent
// runs it, drives a real buildkitd (root, Debian's runc, OCI worker, mTLS on loopback) that pulls
// its base from the real registry with token auth through the task's client session and pushes by
// digest; the task then moves the tags. skopeo checks what landed, buildah runs it, and the daemon's
// state folder, its log, the registry's storage and the task log are searched for every credential
// and build secret.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startBuildkit, type BuildkitClientCertificates, type BuildkitDaemon } from '../env/buildkit.js';
import { createTestCa } from '../env/ca.js';
import { startAcrEnvironment, registryTrustArgs, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { freePorts } from '../env/http.js';
import { runTool, type ToolError } from '../env/processes.js';
import { pushBase, writeBusyboxBase } from '../fixtures/baseImages.js';
import { folderWith } from '../fixtures/files.js';
import { imageContents } from '../support/imageFiles.js';
import { assertFailedWith, assertNoSecretPrinted, assertSucceeded, registryTokenIdentity, secretConnection } from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAcrBuildImage';
const BIN_DIR = join(import.meta.dirname, '..', '..', '.cache', 'bin');
let env: AcrEnvironment;
let daemon: BuildkitDaemon;
let work: string;
let reader: RegistryClientTrust;
let base: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'buildkit-task-test-'));
  env = await startAcrEnvironment();
  daemon = await startBuildkit({ ca: env.ca, dir: join(work, 'buildkitd'), registries: [env.registry.host] });
  reader = await env.createClientTrust({ role: 'push', host: env.registry.host });
  await writeBusyboxBase(join(work, 'base'));
  await pushBase(join(work, 'base'), reader, 'base/busybox', '1');
  base = `${env.registry.host}/base/busybox:1`;
});

after(async () => {
  await daemon?.stop();
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

interface BuildOptions extends Omit<TaskRunOptions, 'inputs'> {
  /** Default: the running daemon. */
  on?: BuildkitDaemon;
  certificates?: BuildkitClientCertificates;
}

/** The task as an agent of the chart's pool runs it: buildctl on PATH, the agent's CA setting (Agent.CAInfo), no BuildKit address unless given. */
async function build(inputs: TaskRunOptions['inputs'], options: BuildOptions = {}): Promise<TaskRun> {
  const on = options.on ?? daemon;
  const result = await runTask(TASK, {
    ...options,
    connections: options.connections ?? { arm: secretConnection(env) },
    inputs: {
      azureSubscription: 'arm',
      registry: env.registry.host,
      repository: 'team/app',
      tags: '1.0.0',
      buildkitAddress: on.address,
      buildkitCertificates: (options.certificates ?? on.client).dir,
      ...inputs,
    },
    variables: { 'Agent.CAInfo': env.ca.caCertPath, ...options.variables },
    env: { PATH: `${BIN_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`, NODE_EXTRA_CA_CERTS: '', ...options.env },
    timeoutMs: 240_000,
  });
  assertNoSecretPrinted(env, result);
  return result;
}

async function skopeo(args: string[]): Promise<string> {
  return (await runTool('skopeo', args, { timeoutMs: 60_000 })).stdout;
}

async function servedDigest(repository: string, tag: string): Promise<string | undefined> {
  const raw = await skopeo(['inspect', '--raw', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/${repository}:${tag}`]).catch(() => undefined);
  return raw === undefined ? undefined : `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

function dockerfileIn(files: Record<string, string>): Promise<string> {
  return folderWith(work, files).then((dir) => join(dir, 'Dockerfile'));
}

/** Files under `dir` holding any of `needles`, also inside gzip-compressed files (layers, cache blobs). */
async function filesHolding(dir: string, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  const wanted = needles.filter((needle) => needle.length >= 8);
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    let bytes = await readFile(path).catch(() => Buffer.alloc(0));
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = Buffer.concat([bytes, gunzipOrNothing(bytes)]);
    for (const needle of wanted) if (bytes.includes(needle)) found.push(`${path}: ${needle.slice(0, 10)}…`);
  }
  return found;
}

function gunzipOrNothing(bytes: Buffer): Buffer {
  try {
    return gunzipSync(bytes);
  } catch {
    return Buffer.alloc(0);
  }
}

/** Every credential the run could have leaked: what the stand-ins issued, and what the task registered as secret. */
function credentials(run: TaskRun): string[] {
  return [...env.secrets(), ...run.registeredSecrets];
}

/** Runs the image's entrypoint with buildah (chroot isolation), as a container runtime would. */
async function runImage(reference: string): Promise<string> {
  const storage = ['--root', join(work, 'buildah', 'root'), '--runroot', join(work, 'buildah', 'run'), '--storage-driver', 'vfs'];
  const container = (await runTool('buildah', [...storage, 'from', '--quiet', '--cert-dir', reader.certDir, '--authfile', reader.authFile, `docker://${reference}`], { timeoutMs: 120_000 })).stdout.trim();
  try {
    const inspect = JSON.parse((await runTool('buildah', [...storage, 'inspect', container])).stdout) as { OCIv1: { config: { Entrypoint: string[] } } };
    const output = await runTool('buildah', [...storage, 'run', '--isolation', 'chroot', container, '--', ...inspect.OCIv1.config.Entrypoint]).catch((error: ToolError) => {
      throw new Error(`${error.message}: ${error.stderr}`);
    });
    return output.stdout.trim();
  } finally {
    await runTool('buildah', [...storage, 'rm', container]).catch(() => undefined);
  }
}

/** An app image as teams write them: dependencies installed by RUN (offline here: the test has no network), code copied, a build step. */
const APP_DOCKERFILE = (from: string) =>
  [
    `FROM ${from}`,
    'WORKDIR /app',
    'COPY package.json ./',
    // Stands in for `npm ci`, which needs the npm registry.
    'RUN busybox mkdir -p node_modules/left-pad && echo "module.exports = (s) => s;" > node_modules/left-pad/index.js && echo installed 1 package',
    'COPY src ./src',
    'RUN cat src/main.txt node_modules/left-pad/index.js > /app/built.txt',
    'USER 1000',
    'ENTRYPOINT ["/bin/sh", "-c", "cat /app/built.txt"]',
    '',
  ].join('\n');

void describe('BuildKit builder', { timeout: 20 * 60_000 }, () => {
  test('a Dockerfile with RUN: the base comes from the registry through the client session, the image is pushed by digest, the tags move last, and the image runs', async () => {
    const dockerfile = await dockerfileIn({ Dockerfile: APP_DOCKERFILE(base), 'package.json': '{"name":"app"}\n', 'src/main.txt': 'hello from the app\n' });
    const tokenRequestsBefore = env.tokenServer.requests.length;
    const run = await build(
      { dockerfile, tags: '1.0.0\nlatest', labels: 'team=web', builder: 'auto' },
      { variables: { 'Build.Repository.Uri': 'https://dev.azure.com/contoso/web/_git/web', 'Build.SourceVersion': 'abc123' } },
    );
    assertSucceeded(run);
    const digest = run.outputs.digest;
    assert.match(digest, /^sha256:[a-f0-9]{64}$/);
    assert.equal(run.outputs.imageRef, `${env.registry.host}/team/app@${digest}`);
    assert.equal(await servedDigest('team/app', '1.0.0'), digest);
    assert.equal(await servedDigest('team/app', 'latest'), digest);

    // The log is BuildKit's progress: numbered steps, their output and timings; auto said why it chose BuildKit.
    assert.match(run.maskedOutput, /Building with BuildKit: Dockerfile:4 needs it \(RUN needs a container runtime\)/);
    assert.match(run.maskedOutput, /#\d+ \[4\/6\] RUN busybox mkdir/);
    assert.match(run.maskedOutput, /#\d+ installed 1 package/);
    assert.match(run.maskedOutput, /#\d+ DONE \d+\.\ds/);
    assert.match(run.summaries[0], /\| Builder \| buildkit \|/);
    assert.match(run.summaries[0], /\| Steps \| 6 Dockerfile steps, 0 from the cache \|/);
    // buildctl traded the refresh token for access tokens itself; nobody handed the daemon a login.
    assert.ok(env.tokenServer.requests.slice(tokenRequestsBefore).some((request) => request.grantType === 'refresh_token' && request.scopes.includes('repository:base/busybox:pull')));
    assert.doesNotMatch(run.maskedOutput, /sharing credentials/);
    assert.deepEqual(run.tempFilesLeft.filter((file) => !/-summary-\d+\.md$/.test(file) && file !== '.taskkey'), [], 'the docker config and its folder are removed');

    const config = JSON.parse(await skopeo(['inspect', '--config', ...registryTrustArgs.skopeo(reader), `docker://${env.registry.host}/team/app@${digest}`])) as { config: { Labels: Record<string, string> } };
    assert.equal(config.config.Labels.team, 'web');
    assert.equal(config.config.Labels['org.opencontainers.image.source'], 'https://dev.azure.com/contoso/web/_git/web');
    assert.equal(config.config.Labels['org.opencontainers.image.revision'], 'abc123');
    assert.equal(await runImage(`${env.registry.host}/team/app@${digest}`), 'hello from the app\nmodule.exports = (s) => s;');

    // No login or token in what the daemon keeps or logs.
    assert.deepEqual(await filesHolding(daemon.rootDir, credentials(run)), []);
    const daemonLog = await readFile(daemon.logPath, 'utf8');
    assert.deepEqual(credentials(run).filter((credential) => daemonLog.includes(credential)), []);
  });

  test('a build secret is usable in RUN, never on a command line, and in no layer, config, cache, log or daemon state; a step that prints it is masked', async () => {
    const secret = `npm_${randomBytes(18).toString('hex')}`;
    const dockerfile = await dockerfileIn({
      Dockerfile: [
        `FROM ${base}`,
        'RUN --mount=type=secret,id=npm_token,env=NPM_TOKEN busybox sleep 2 && test -n "$NPM_TOKEN" && printf %s "$NPM_TOKEN" | busybox sha256sum > /token-from-env.sha256',
        'RUN --mount=type=secret,id=npm_token cat /run/secrets/npm_token | busybox sha256sum > /token-from-file.sha256',
        '',
      ].join('\n'),
    });
    let argvChecked = false;
    const inputs = { repository: 'team/secret', buildSecrets: 'npm_token=NPM_TOKEN', cacheRepository: 'team/secret-cache', builder: 'buildkit' };
    const run = await build(
      { ...inputs, dockerfile },
      {
        env: { NPM_TOKEN: secret },
        whileRunning: async (task) => {
          await until('the RUN step with the secret to start', () => Promise.resolve(task.output().includes('--mount=type=secret')));
          assert.deepEqual(processesMentioning(secret), [], 'the secret is on a command line');
          argvChecked = true;
        },
      },
    );
    assertSucceeded(run);
    assert.ok(argvChecked);
    assert.ok(run.registeredSecrets.includes(secret), 'the secret is registered for masking before the build');

    const layout = join(work, 'secret-image');
    await skopeo(['copy', '--quiet', ...registryTrustArgs.skopeoSource(reader), `docker://${env.registry.host}/team/secret@${run.outputs.digest}`, `oci:${layout}:latest`]);
    const contents = await imageContents(layout);
    // Both files hold sha256sum's line for the secret: RUN saw it through the variable and the file.
    const expected = createHash('sha256').update(`${createHash('sha256').update(secret).digest('hex')}  -\n`).digest('hex').slice(0, 16);
    for (const file of ['token-from-env.sha256', 'token-from-file.sha256']) {
      const line = contents.files.find((entry) => entry.startsWith(`${file}\t`));
      assert.ok(line?.endsWith(`\t${expected}`), `${file}: ${line}`);
    }
    assert.ok(await servedDigest('team/secret-cache', 'buildcache'), 'the cache was exported');
    assert.deepEqual(await filesHolding(layout, [secret]), [], 'the image holds the secret');
    assert.deepEqual(await filesHolding(env.registry.storageDir, [secret]), [], 'the registry (image and cache) holds the secret');
    assert.deepEqual(await filesHolding(daemon.rootDir, [secret]), [], "the daemon's state holds the secret");
    assert.ok(!(await readFile(daemon.logPath, 'utf8')).includes(secret), "the daemon's log holds the secret");
    assert.ok(!run.maskedOutput.includes(secret));

    // A step that prints the secret: the agent masks it (what a step prints is its own output, and BuildKit keeps that in its build history).
    const printing = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN --mount=type=secret,id=npm_token,env=NPM_TOKEN echo "token: $NPM_TOKEN"\n` });
    const printed = await build({ ...inputs, dockerfile: printing }, { env: { NPM_TOKEN: secret } });
    assertSucceeded(printed);
    assert.match(printed.maskedOutput, /#\d+ token: \*\*\*/);
    assert.ok(!printed.maskedOutput.includes(secret));
  });

  test('the registry cache: a daemon with wiped local state takes every step from the cache, in less than half the time', async () => {
    const files = { Dockerfile: `FROM ${base}\nRUN busybox sleep 4 && echo expensive > /result\nCOPY input.txt /input.txt\n`, 'input.txt': 'one\n' };
    const dockerfile = await dockerfileIn(files);
    const inputs = { dockerfile, repository: 'team/cached', cacheRepository: 'team/cached-cache' };
    const firstStarted = Date.now();
    const first = await build(inputs);
    const firstMs = Date.now() - firstStarted;
    assertSucceeded(first);
    assert.doesNotMatch(first.maskedOutput, /#(\d+) \[2\/3\] RUN busybox sleep 4[^]*#\1 CACHED/);

    // Another replica, or this one after a restart: nothing local, only the registry cache.
    const fresh = await startBuildkit({ ca: env.ca, dir: join(work, 'buildkitd-fresh'), registries: [env.registry.host] });
    try {
      const secondStarted = Date.now();
      const second = await build(inputs, { on: fresh });
      const secondMs = Date.now() - secondStarted;
      assertSucceeded(second);
      assert.match(second.maskedOutput, /#(\d+) \[2\/3\] RUN busybox sleep 4[^\n]*\n#\1 CACHED/);
      assert.match(second.summaries[0], /3 Dockerfile steps, 2 from the cache/);
      assert.ok(secondMs < firstMs / 2, `the cached build took ${secondMs} ms, the first ${firstMs} ms`);
      assert.equal(second.outputs.digest, first.outputs.digest, 'the same steps give the same image');
    } finally {
      await fresh.stop();
    }
  });

  test('several tags, outputPath and SOURCE_DATE_EPOCH: the OCI layout holds the pushed image', async () => {
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN echo built > /built.txt\n` });
    const layout = join(work, 'buildkit-layout');
    const run = await build({ dockerfile, repository: 'team/layout', tags: 'a\nb', outputPath: layout, buildArgs: 'SOURCE_DATE_EPOCH=1700000000' });
    assertSucceeded(run);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.equal(index.manifests[0].digest, run.outputs.digest);
    assert.equal(await servedDigest('team/layout', 'a'), run.outputs.digest);
    assert.equal(await servedDigest('team/layout', 'b'), run.outputs.digest);
    const contents = await imageContents(layout);
    assert.equal((contents.config as { created?: string }).created, '2023-11-14T22:13:20Z');
  });

  test('a registry user (registryCredentials) logs in through the same docker config', async () => {
    const identity = registryTokenIdentity(env, ['team/token-built', 'base/busybox']);
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN echo ok > /ok\n` });
    const run = await build({ ...identity.inputs, dockerfile, repository: 'team/token-built' }, identity.options);
    assertSucceeded(run);
    assert.equal(await servedDigest('team/token-built', '1.0.0'), run.outputs.digest);
    assert.deepEqual(await filesHolding(daemon.rootDir, credentials(run)), []);
  });

  test('cancelled as the agent cancels (SIGINT) during a RUN: the step stops and the login is removed', async () => {
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN busybox sleep 93\n` });
    let tempDir = '';
    const run = await build(
      { dockerfile, repository: 'team/cancelled' },
      {
        whileRunning: async (task) => {
          tempDir = task.tempDir;
          await until('the RUN step to start', () => Promise.resolve(processesMentioning('sleep 93').length > 0));
          task.kill('SIGINT');
        },
      },
    );
    assert.equal(run.result, 'Failed');
    assert.match(run.errors[0] ?? '', /^Cancelled \(SIGINT\)/);
    assert.deepEqual(run.tempFilesLeft.filter((file) => file !== '.taskkey'), []);
    await until('BuildKit to stop the step', () => Promise.resolve(processesMentioning('sleep 93').length === 0), 20_000);
    assert.deepEqual(processesMentioning(tempDir), [], 'buildctl is still running');
    assert.equal(await servedDigest('team/cancelled', '1.0.0'), undefined);
  });
});

void describe('BuildKit builder: one clear line, and no tag moved', { timeout: 10 * 60_000 }, () => {
  let stableDigest: string;
  before(async () => {
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN echo v1 > /version\n` });
    const run = await build({ dockerfile, repository: 'team/stable', tags: '1.0.0\nlatest' });
    assertSucceeded(run);
    stableDigest = run.outputs.digest;
  });

  async function assertTagsKept(): Promise<void> {
    assert.equal(await servedDigest('team/stable', '1.0.0'), stableDigest);
    assert.equal(await servedDigest('team/stable', 'latest'), stableDigest);
  }

  test('a RUN that fails late names its line, exit code and last output', async () => {
    const dockerfile = await dockerfileIn({
      Dockerfile: `FROM ${base}\nRUN echo v2 > /version\nCOPY app.txt /app.txt\nRUN echo compiling >&2 && echo "main.c:3: undefined reference to 'run'" >&2 && exit 3\n`,
      'app.txt': 'app\n',
    });
    const run = await build({ dockerfile, repository: 'team/stable', tags: '1.0.0\nlatest' });
    // Both lines on one stream: BuildKit relays stdout and stderr separately, so across streams their order may change.
    assertFailedWith(run, /^Dockerfile:4: RUN echo compiling .* failed with exit code 3; its last output: compiling \| main\.c:3: undefined reference to 'run'$/);
    await assertTagsKept();
  });

  test('a client certificate the daemon does not trust', async () => {
    const stranger = await createTestCa(join(work, 'stranger-ca'));
    const issued = await daemon.issueClient('stranger', stranger);
    // The daemon's CA is trusted, but the client certificate comes from another CA.
    await cp(daemon.client.caFile, issued.caFile);
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN true\n` });
    const run = await build({ dockerfile, repository: 'team/stable', tags: '1.0.0\nlatest' }, { certificates: issued });
    assertFailedWith(run, /^The BuildKit daemon at tcp:\/\/127\.0\.0\.1:\d+ refused the client certificate in .*stranger \((broken pipe|connection reset by peer|certificate required|bad certificate|unknown certificate authority)\): it accepts only certificates from the CA it was given/);
    await assertTagsKept();
  });

  test('an address where no daemon listens', async () => {
    const [port] = await freePorts(1);
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN true\n` });
    const run = await build({ dockerfile, repository: 'team/stable', tags: '1.0.0\nlatest', buildkitAddress: `tcp://127.0.0.1:${port}` });
    assertFailedWith(run, new RegExp(`^Cannot reach the BuildKit daemon at tcp://127\\.0\\.0\\.1:${port} \\(connection refused\\): check buildkitAddress`));
    await assertTagsKept();
  });

  const inputFailures: [string, Record<string, string>, RegExp][] = [
    ['RUN with no builder set', { builder: 'auto', buildkitAddress: '' }, /^Dockerfile:2: RUN needs a container runtime, which the assemble builder does not do, and no BuildKit daemon is set: give buildkitAddress/],
    ['an address that is not tcp://host:port', { buildkitAddress: 'buildkitd:1234' }, /^Input 'buildkitAddress': 'buildkitd:1234' is not tcp:\/\/host:port/],
    ['a certificate folder without the key', { buildkitCertificates: '/nonexistent/buildkit' }, /^Input 'buildkitCertificates': \/nonexistent\/buildkit has no ca\.pem or ca\.crt/],
    ['a build secret whose variable is not set', { buildSecrets: 'npm=NOT_MAPPED' }, /^Input 'buildSecrets': the environment has no NOT_MAPPED \(for secret npm\)/],
  ];
  for (const [name, inputs, message] of inputFailures) {
    test(name, async () => {
      const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN true\n` });
      assertFailedWith(await build({ dockerfile, repository: 'team/stable', tags: '1.0.0\nlatest', ...inputs }), message);
      await assertTagsKept();
    });
  }

  test('BUILDKIT_HOST on the agent is the default address', async () => {
    const dockerfile = await dockerfileIn({ Dockerfile: `FROM ${base}\nRUN echo from-env > /x\n` });
    const run = await build({ dockerfile, repository: 'team/from-env', buildkitAddress: '' }, { env: { BUILDKIT_HOST: daemon.address } });
    assertSucceeded(run);
  });
});

/** Resolves once `check` does, polling; fails after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): string[] {
  return readdirSyncProc().filter((entry) => entry.commandLine.includes(text)).map((entry) => `${entry.pid}: ${entry.commandLine}`);
}

function readdirSyncProc(): { pid: string; commandLine: string }[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((pid) => {
      try {
        return { pid, commandLine: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') };
      } catch {
        return { pid, commandLine: '' };
      }
    });
}
