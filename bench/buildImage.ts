// The build benchmark of the PrivateAcrBuildImage issue: an app image — a base of about 80 MiB
// already in the registry, then COPY of about 45 MiB of dependencies (real npm packages) and about
// 5 MiB of code (real JavaScript files) — built and pushed cold by the bundled task, by
// `buildah bud` + `buildah push` (vfs storage, chroot isolation, fresh storage each run) and by
// BuildKit (`buildctl build … push=true` against a freshly started daemon). Then a rebuild after
// one code file changes, on the same agent (its work folder kept), which must upload only the code layer.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { buildctlEnvironment, dockerConfigFolder, startBuildkit, BUILDCTL } from '../test/env/buildkit.js';
import { startAcrEnvironment, registryTrustArgs, type AcrEnvironment, type RegistryClientTrust } from '../test/env/environment.js';
import { pushBase, writeBusyboxBase } from '../test/fixtures/baseImages.js';
import { secretConnection } from '../test/support/registryIdentities.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { median, medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(ROOT, '.cache', 'bench', 'build');
const MiB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** The base's size as image sizes are quoted (its files, uncompressed); busybox brings the last 2 MiB. */
const BASE_FILES_MIB = 80;
const run = promisify(execFile);

interface Fixtures {
  /** OCI layout of the base (busybox plus about 80 MiB of this machine's shared files). */
  baseLayout: string;
  /** The build context: Dockerfile, node_modules/ and dist/. */
  context: string;
}

/** Copies real files from `from` into `to` in sorted order until about `bytes` are there. */
async function copyRealFiles(from: string, to: string, bytes: number): Promise<number> {
  const { stdout } = await run('find', ['-H', from, '-type', 'f', '-size', '-4M', '-printf', '%s %p\\n'], { maxBuffer: 256 * MiB });
  const files = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ size: Number(line.slice(0, line.indexOf(' '))), path: line.slice(line.indexOf(' ') + 1) }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  let total = 0;
  for (const file of files) {
    if (total >= bytes) break;
    const target = join(to, relative(from, file.path));
    await mkdir(join(target, '..'), { recursive: true });
    await cp(file.path, target);
    total += file.size;
  }
  return total;
}

/** Written once under .cache/bench/build; the sizes are those the issue names. */
async function fixtures(): Promise<Fixtures> {
  await mkdir(FIXTURES, { recursive: true });
  const baseLayout = join(FIXTURES, 'base-layout');
  const context = join(FIXTURES, 'context');
  if (!existsSync(join(baseLayout, 'index.json'))) {
    await rm(baseLayout, { recursive: true, force: true });
    const shared = await mkdtemp(join(FIXTURES, 'shared-'));
    await copyRealFiles('/usr/lib/x86_64-linux-gnu', join(shared, 'usr/lib/x86_64-linux-gnu'), (BASE_FILES_MIB - 2) * MiB);
    const files: Record<string, string> = {};
    // The base is written by the test fixture from busybox; the shared libraries ride along as extra files.
    const { stdout } = await run('find', [shared, '-type', 'f'], { maxBuffer: 64 * MiB });
    for (const path of stdout.trim().split('\n')) files[relative(shared, path)] = path;
    await writeBusyboxBase(baseLayout, { copyFiles: files });
    await rm(shared, { recursive: true, force: true });
  }
  if (!existsSync(join(context, 'Dockerfile'))) {
    await rm(context, { recursive: true, force: true });
    await mkdir(context, { recursive: true });
    await copyRealFiles(join(ROOT, 'node_modules'), join(context, 'node_modules'), 45 * MiB);
    await copyRealFiles(join(ROOT, 'node_modules', 'typescript', 'lib'), join(context, 'dist'), 5 * MiB);
    await writeFile(join(context, 'dist', 'server.js'), 'console.log("version 0");\n');
    await writeFile(
      join(context, 'Dockerfile'),
      ['ARG BASE', 'FROM ${BASE}', 'WORKDIR /app', 'COPY node_modules ./node_modules', 'COPY dist ./dist', 'USER 1000', 'ENTRYPOINT ["/bin/sh", "-c", "cat /app/dist/server.js"]', ''].join('\n'),
    );
  }
  return { baseLayout, context };
}

async function sizeOf(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const name of await readdir(path)) total += await sizeOf(join(path, name));
  return total;
}

/** A cold registry per run: fresh storage, the base pushed into its own repository before timing. */
async function freshRegistry(baseLayout: string): Promise<{ env: AcrEnvironment; trust: RegistryClientTrust; base: string }> {
  const env = await startAcrEnvironment({ relativeUrls: true });
  const trust = await env.createClientTrust({ role: 'push', host: env.registry.host });
  await pushBase(baseLayout, trust, 'bench/base', '1');
  return { env, trust, base: `${env.registry.host}/bench/base:1` };
}

/** `workFolder`: the agent's work folder, which a persistent agent keeps between jobs. */
function ourTask(env: AcrEnvironment, context: string, base: string, tags: string, workFolder: string) {
  return prepareTask('PrivateAcrBuildImage', {
    variables: { 'Agent.WorkFolder': workFolder },
    inputs: { azureSubscription: 'arm', registry: env.registry.host, repository: 'bench/app', dockerfile: join(context, 'Dockerfile'), buildArgs: `BASE=${base}`, tags },
    connections: { arm: secretConnection(env) },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
  });
}

/** Runs commands in turn, one sample for all of them. */
async function timedSequence(commands: [string, string[], NodeJS.ProcessEnv][]): Promise<Sample> {
  const samples: Sample[] = [];
  for (const [command, args, env] of commands) samples.push(await timed(command, args, env));
  return {
    seconds: samples.reduce((sum, sample) => sum + sample.seconds, 0),
    peakRssMb: Math.max(...samples.map((sample) => sample.peakRssMb)),
    cpuSeconds: samples.reduce((sum, sample) => sum + sample.cpuSeconds, 0),
  };
}

export async function benchBuildImage(): Promise<BenchReport[]> {
  const { baseLayout, context } = await fixtures();
  const work = await mkdtemp(join(FIXTURES, 'run-'));
  const task: Sample[] = [];
  const rebuild: Sample[] = [];
  const uploadedOnRebuild: number[] = [];
  const buildah: Sample[] = [];
  const buildkit: Sample[] = [];
  try {
    for (let round = 0; round < RUNS; round++) {
      // The task, cold, then a rebuild after one code file changed.
      {
        const { env, base } = await freshRegistry(baseLayout);
        const copy = join(work, `context-${round}`);
        await cp(context, copy, { recursive: true });
        const agentWork = await mkdtemp(join(work, 'agent-work-'));
        try {
          const first = ourTask(env, copy, base, 'bench', agentWork);
          task.push(await timed(process.execPath, [first.script], first.env));
          await rm(first.tempDir, { recursive: true, force: true });
          await appendFile(join(copy, 'dist', 'server.js'), `console.log(${JSON.stringify(createHash('sha256').update(String(round)).digest('hex'))});\n`);
          const second = ourTask(env, copy, base, 'bench', agentWork);
          const uploadsBefore = await countUploads(env.registry.logPath);
          rebuild.push(await timed(process.execPath, [second.script], second.env));
          uploadedOnRebuild.push((await countUploads(env.registry.logPath)) - uploadsBefore);
          await rm(second.tempDir, { recursive: true, force: true });
        } finally {
          await env.stop();
          await rm(copy, { recursive: true, force: true });
          await rm(agentWork, { recursive: true, force: true });
        }
      }
      // buildah bud + buildah push, with empty storage.
      {
        const { env, trust, base } = await freshRegistry(baseLayout);
        const storage = await mkdtemp(join(work, 'buildah-'));
        const global = ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'vfs'];
        try {
          buildah.push(
            await timedSequence([
              ['buildah', [...global, 'bud', '--isolation', 'chroot', '--layers=false', '--cert-dir', trust.certDir, '--authfile', trust.authFile, '--build-arg', `BASE=${base}`, '-t', 'localhost/bench-app', context], process.env],
              ['buildah', [...global, 'push', ...registryTrustArgs.skopeo(trust), 'localhost/bench-app', `docker://${env.registry.host}/bench/app:bench`], process.env],
            ]),
          );
        } finally {
          await run('buildah', [...global, 'rm', '--all']).catch(() => undefined);
          await env.stop();
          await rm(storage, { recursive: true, force: true });
        }
      }
      // BuildKit, a daemon with empty state.
      {
        const { env, trust, base } = await freshRegistry(baseLayout);
        const daemon = await startBuildkit({ ca: env.ca, dir: await mkdtemp(join(work, 'buildkit-')), registries: [env.registry.host] });
        const dockerConfig = await dockerConfigFolder(work, trust.authFile);
        try {
          buildkit.push(
            await timed(
              BUILDCTL,
              [
                ...daemon.connectionArgs(), 'build', '--frontend', 'dockerfile.v0', '--local', `context=${context}`, '--local', `dockerfile=${context}`,
                '--opt', `build-arg:BASE=${base}`, '--opt', 'platform=linux/amd64', '--output', `type=image,name=${env.registry.host}/bench/app:bench,push=true`,
              ],
              buildctlEnvironment(env.ca, dockerConfig),
            ),
          );
        } finally {
          await daemon.stop();
          await env.stop();
          await rm(dockerConfig, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const figures: ToolFigures[] = [
    { tool: 'PrivateAcrBuildImage task (assemble)', samples: task },
    { tool: 'buildah bud + buildah push (vfs, chroot)', samples: buildah },
    { tool: 'buildctl build … push=true (fresh buildkitd)', samples: buildkit },
    { tool: 'PrivateAcrBuildImage task, rebuild (same agent)', samples: rebuild },
  ];
  const ours = medianSeconds(figures[0]);
  const ratio = (other: ToolFigures) => ours / medianSeconds(other);
  const rebuildRatio = medianSeconds(figures[3]) / ours;
  const baseCompressed = (await sizeOf(join(baseLayout, 'blobs'))) / MiB;
  const mib = async (path: string) => ((await sizeOf(path)) / MiB).toFixed(0);
  return [
    {
      title: `Build and push an app image: a base of ${BASE_FILES_MIB} MiB of files (${baseCompressed.toFixed(0)} MiB compressed) in the registry, COPY ${await mib(join(context, 'node_modules'))} MiB of dependencies and ${await mib(join(context, 'dist'))} MiB of code (cold, ${RUNS} runs each)`,
      figures,
      targets: [
        { claim: 'median at most 0.3x buildah bud + push', met: ratio(figures[1]) <= 0.3, detail: `task/buildah = ${ratio(figures[1]).toFixed(2)}` },
        { claim: 'median at most 0.5x buildctl build … push=true', met: ratio(figures[2]) <= 0.5, detail: `task/buildkit = ${ratio(figures[2]).toFixed(2)}` },
        { claim: 'a rebuild after one code file changes takes at most 0.2x the first build', met: rebuildRatio <= 0.2, detail: `rebuild/first = ${rebuildRatio.toFixed(2)}` },
        {
          claim: 'the rebuild uploads only the code layer (and the new config)',
          met: uploadedOnRebuild.every((count) => count === 2),
          detail: `blobs uploaded per rebuild: ${uploadedOnRebuild.join(', ')} (median ${median(uploadedOnRebuild)})`,
        },
      ],
    },
  ];
}

/** Blob uploads the registry completed, from its access log (each ends with a PUT …?digest=). */
async function countUploads(logPath: string): Promise<number> {
  const text = await readFile(logPath, 'utf8');
  return (text.match(/"PUT \/v2\/[^ ]+\/blobs\/uploads\/[^ ]*digest=sha256/g) ?? []).length;
}
