// Builds agent-image/Dockerfile for real with buildah (vfs storage, chroot isolation) from a
// debootstrap'd Debian bookworm base, inside a network namespace that has nothing but loopback:
// the agent package (the fake agent, packed), helm and kubectl come from a file server on
// 127.0.0.1 with their SHA-256 as build arguments, which proves the Dockerfile builds offline.
// Then start.sh runs once inside the image, as its non-root user, and helm, kubectl and git run.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { access, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { fakeAgentSource, repoRoot, secretValue, sha256, type ConfigRecord } from './harness.js';

const run = promisify(execFile);
const imageDir = path.join(repoRoot, 'agent-image');
const cacheDir = path.join(repoRoot, '.cache/agent-image');
const toolsDir = path.join(repoRoot, '.cache/bin');
const IMAGE = 'localhost/azure-pipelines-agent:test';
const BASE = 'localhost/bookworm-offline-base:test';
const AGENT_UID = 10001;

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/** agent-image/versions.env as name → value. */
async function readVersions(): Promise<Record<string, string>> {
  const text = await readFile(path.join(imageDir, 'versions.env'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map(([, name, value]) => [name, value]));
}

async function fileSha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** helm and kubectl are built here by the project's installers; run them when a binary is missing (they are idempotent). */
async function ensureTool(name: string, installer: string): Promise<string> {
  const binary = path.join(toolsDir, name);
  if (!(await exists(binary))) await run('bash', [path.join(repoRoot, 'scripts', installer)], { maxBuffer: 64 << 20 });
  assert.ok(await exists(binary), `${installer} did not produce ${binary}`);
  return binary;
}

/**
 * The debootstrap'd base, cached under .cache/ by the content of what makes it (the script and
 * the Dockerfile's package list), so reruns skip the two minutes debootstrap takes.
 */
async function offlineBaseTarball(): Promise<string> {
  const script = path.join(imageDir, 'make-offline-base.sh');
  const packages = /^ARG OS_PACKAGES=.*$/m.exec(await readFile(path.join(imageDir, 'Dockerfile'), 'utf8'))?.[0];
  assert.ok(packages, 'the Dockerfile has an ARG OS_PACKAGES line');
  const key = sha256((await readFile(script, 'utf8')) + packages).slice(0, 16);
  const tarball = path.join(cacheDir, `bookworm-base-${key}.tar`);
  if (!(await exists(tarball))) await run('bash', [script, tarball], { maxBuffer: 64 << 20 });
  return tarball;
}

/** A process whose network namespace has only loopback, for the build to run in. */
async function startIsolatedNetwork(): Promise<ChildProcess> {
  const holder = spawn('unshare', ['--net', 'sh', '-c', 'ip link set lo up && echo ready && exec sleep infinity'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: holder.stdout }), 'line')) as [string];
  assert.equal(line, 'ready');
  return holder;
}

void describe('agent image build', { timeout: 30 * 60_000 }, () => {
  let work: string;
  let buildah: (args: string[]) => Promise<{ stdout: string; stderr: string }>;
  let network: ChildProcess;
  let fileServer: ChildProcess;
  let filesUrl: string;
  const fetched: string[] = [];
  const buildArgs: Record<string, string> = {};

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'agent-image-build-'));
    const storage = ['--root', path.join(work, 'storage'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs'];
    buildah = (args) => run('buildah', [...storage, ...args], { maxBuffer: 64 << 20 });
    network = await startIsolatedNetwork();

    // What the build downloads: the fake agent packed like the real package, helm as its release
    // tarball (linux-amd64/helm), kubectl as the bare binary.
    const files = path.join(work, 'files');
    await mkdir(path.join(files, 'helm/linux-amd64'), { recursive: true });
    await run('tar', ['-czf', path.join(files, 'agent.tar.gz'), '-C', fakeAgentSource, '.']);
    await cp(await ensureTool('helm', 'install-go-tools.sh'), path.join(files, 'helm/linux-amd64/helm'));
    await run('tar', ['-czf', path.join(files, 'helm.tar.gz'), '-C', path.join(files, 'helm'), 'linux-amd64/helm']);
    await cp(await ensureTool('kubectl', 'install-go-tools.sh'), path.join(files, 'kubectl'));
    // buildctl and trivy as their release tarballs lay them out (bin/buildctl, trivy at the top).
    await mkdir(path.join(files, 'buildkit/bin'), { recursive: true });
    await cp(await ensureTool('buildctl', 'install-go-tools.sh'), path.join(files, 'buildkit/bin/buildctl'));
    await run('tar', ['-czf', path.join(files, 'buildkit.tar.gz'), '-C', path.join(files, 'buildkit'), 'bin/buildctl']);
    await run('tar', ['-czf', path.join(files, 'trivy.tar.gz'), '-C', toolsDir, 'trivy']);

    fileServer = spawn('nsenter', [`--net=/proc/${network.pid}/ns/net`, process.execPath, '--import', 'tsx', path.join(import.meta.dirname, 'serve-files.ts'), files], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: fileServer.stdout! });
    const [listening] = (await once(lines, 'line')) as [string];
    filesUrl = listening.replace(/^listening /, '');
    lines.on('line', (line) => fetched.push(line));

    Object.assign(buildArgs, {
      AGENT_PACKAGE_URL: `${filesUrl}/agent.tar.gz`,
      AGENT_PACKAGE_SHA256: await fileSha256(path.join(files, 'agent.tar.gz')),
      HELM_URL: `${filesUrl}/helm.tar.gz`,
      HELM_SHA256: await fileSha256(path.join(files, 'helm.tar.gz')),
      KUBECTL_URL: `${filesUrl}/kubectl`,
      KUBECTL_SHA256: await fileSha256(path.join(files, 'kubectl')),
      BUILDKIT_URL: `${filesUrl}/buildkit.tar.gz`,
      BUILDKIT_SHA256: await fileSha256(path.join(files, 'buildkit.tar.gz')),
      TRIVY_URL: `${filesUrl}/trivy.tar.gz`,
      TRIVY_SHA256: await fileSha256(path.join(files, 'trivy.tar.gz')),
    });

    // The base image from the debootstrap'd root file system.
    const base = (await buildah(['from', 'scratch'])).stdout.trim();
    await buildah(['add', base, await offlineBaseTarball(), '/']);
    await buildah(['commit', '--quiet', base, BASE]);
    await buildah(['rm', base]);
  });

  after(async () => {
    fileServer?.kill('SIGTERM');
    network?.kill('SIGKILL');
    await buildah?.(['rm', '--all']).catch(() => undefined);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `buildah bud` inside the loopback-only network namespace. */
  async function build(args: Record<string, string>, tag: string): Promise<{ stdout: string; stderr: string }> {
    const storage = ['--root', path.join(work, 'storage'), '--runroot', path.join(work, 'run'), '--storage-driver', 'vfs'];
    const buildArgList = Object.entries({ BASE_IMAGE: BASE, ...args }).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
    return run('nsenter', [`--net=/proc/${network.pid}/ns/net`, 'buildah', ...storage, 'bud', '--isolation', 'chroot', '--layers=false', '--pull=never',
      '--tag', tag, ...buildArgList, imageDir], { maxBuffer: 64 << 20 });
  }

  void test('a download that does not match its SHA-256 fails the build', async () => {
    const wrong = '0'.repeat(64);
    await assert.rejects(build({ ...buildArgs, KUBECTL_SHA256: wrong }, 'localhost/azure-pipelines-agent:bad-checksum'), (error: Error & { stderr: string }) => {
      assert.match(error.stderr, new RegExp(`install\\.sh: ${filesUrl}/kubectl does not match KUBECTL_SHA256 \\(${wrong}\\): refusing to install it`));
      return true;
    });
  });

  void test('builds offline, runs start.sh as a non-root user, and has working helm, kubectl, buildctl, trivy and git', async (t) => {
    fetched.length = 0;
    await build(buildArgs, IMAGE);
    assert.deepEqual(fetched.sort(), ['GET /agent.tar.gz 200', 'GET /buildkit.tar.gz 200', 'GET /helm.tar.gz 200', 'GET /kubectl 200', 'GET /trivy.tar.gz 200']);

    const config = JSON.parse((await buildah(['inspect', '--type', 'image', IMAGE])).stdout) as {
      OCIv1: { config: { User: string; Entrypoint: string[]; Env: string[] }; size?: number };
    };
    assert.equal(config.OCIv1.config.User, `${AGENT_UID}:${AGENT_UID}`);
    assert.deepEqual(config.OCIv1.config.Entrypoint, ['/usr/bin/tini', '--', '/azp/start.sh']);
    assert.ok(config.OCIv1.config.Env.includes('AZP_AGENT_DIR=/azp/agent'));
    const [size] = (await buildah(['images', '--format', '{{.Size}}', IMAGE])).stdout.trim().split('\n');
    t.diagnostic(`image size (with the fake agent in place of the real one): ${size}`);

    const container = (await buildah(['from', '--pull=never', IMAGE])).stdout.trim();
    t.after(() => buildah(['rm', container]));
    const inContainer = async (command: string[], env: Record<string, string> = {}): Promise<string> => {
      const envArgs = Object.entries(env).flatMap(([name, value]) => ['--env', `${name}=${value}`]);
      return (await buildah(['run', '--isolation', 'chroot', ...envArgs, container, '--', ...command])).stdout;
    };

    assert.equal((await inContainer(['id', '-u'])).trim(), String(AGENT_UID));
    // The tools the tests build at agent-image/versions.env's pins are the ones the image installed.
    const pins = await readVersions();
    assert.match(await inContainer(['helm', 'version', '--short']), new RegExp(`^${pins.HELM_VERSION}\\b`));
    assert.match(await inContainer(['kubectl', 'version', '--client']), new RegExp(`Client Version: ${pins.KUBECTL_VERSION}\\b`));
    assert.match(await inContainer(['buildctl', '--version']), new RegExp(` ${pins.BUILDKIT_VERSION} `));
    assert.match(await inContainer(['trivy', '--version']), new RegExp(`^Version: ${pins.TRIVY_VERSION.slice(1)}$`, 'm'));
    assert.match(await inContainer(['git', '--version']), /^git version 2\./);

    // Placeholder mode against the fake agent: the entrypoint's command, as the image's user,
    // with the PAT in a 0600 file the user owns, as a mounted secret would be.
    const pat = secretValue('pat');
    const patFile = path.join(work, 'pat');
    await writeFile(patFile, `${pat}\n`, { mode: 0o600 });
    await buildah(['copy', '--chown', `${AGENT_UID}:${AGENT_UID}`, '--chmod', '0600', container, patFile, '/home/agent/pat']);
    const output = await inContainer(['/usr/bin/tini', '--', '/azp/start.sh'], {
      AZP_URL: 'https://dev.azure.com/contoso',
      AZP_POOL: 'private-aks',
      AZP_AGENT_NAME: 'image-test',
      AZP_MODE: 'placeholder',
      AZP_TOKEN_FILE: '/home/agent/pat',
      FAKE_AGENT_LOG_DIR: '/tmp/fake-agent-log',
      FAKE_AZDO_DIR: '/tmp/fake-azdo',
    });
    assert.ok(!output.includes(pat));
    const records = (await inContainer(['cat', '/tmp/fake-agent-log/config.jsonl'])).trim().split('\n').map((line) => JSON.parse(line) as ConfigRecord & { uid: number });
    assert.equal(records.length, 1);
    assert.equal(records[0].result, 'ok');
    assert.equal(records[0].uid, AGENT_UID);
    assert.equal(records[0].tokenSha256, sha256(pat));
    assert.deepEqual(records[0].secretsOnCommandLine, []);
    assert.equal((await inContainer(['cat', '/tmp/fake-azdo/agents/image-test'])).trim(), 'private-aks');
  });
});
