// The BuildKit builder's benchmark: one buildkitd (root, runc, OCI worker, mTLS on loopback) and
// one registry with token auth. A Dockerfile with RUN steps — dependencies installed by a step that
// waits on the network and writes 24 MiB (as `npm ci` does), the code copied, a build step — built
// cold by the bundled task (`builder: buildkit`) and by `buildctl build … push=true` by hand, on the
// same daemon with its local state pruned before each run; the difference is what the task adds
// (its start, the registry login, the docker config, progress parsing, moving the tag). Then the
// task with `cacheRepository`: cold, and again after one code file changed with the daemon's local
// state wiped, so only the registry cache can help, as on another builder replica.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildctlEnvironment, dockerConfigFolder, startBuildkit, BUILDCTL, type BuildkitDaemon } from '../test/env/buildkit.js';
import { startAcrEnvironment, type AcrEnvironment } from '../test/env/environment.js';
import { pushBase, writeBusyboxBase } from '../test/fixtures/baseImages.js';
import { secretConnection } from '../test/support/registryIdentities.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const ROOT = join(import.meta.dirname, '..');
const BIN_DIR = join(ROOT, '.cache', 'bin');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const DOCKERFILE = [
  'ARG BASE',
  'FROM ${BASE}',
  'WORKDIR /app',
  'COPY package.json ./',
  // Stands in for `npm ci`: mostly waiting on a feed, then a sizeable, incompressible node_modules.
  'RUN busybox sleep 3 && busybox dd if=/dev/urandom of=/app/node_modules.bin bs=1M count=24 2>/dev/null',
  'COPY src ./src',
  'RUN busybox sha256sum node_modules.bin src/* > /app/build.txt',
  'USER 1000',
  'ENTRYPOINT ["/bin/sh", "-c", "cat /app/build.txt"]',
  '',
].join('\n');

async function writeContext(dir: string): Promise<string> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), DOCKERFILE);
  await writeFile(join(dir, 'package.json'), '{"name":"bench-app","version":"1.0.0"}\n');
  await writeFile(join(dir, 'src', 'server.js'), 'console.log("version 0");\n');
  return dir;
}

interface Setup {
  env: AcrEnvironment;
  daemon: BuildkitDaemon;
  base: string;
  /** DOCKER_CONFIG for buildctl by hand: the push identity's login. */
  dockerConfig: string;
}

function ourTask(setup: Setup, context: string, repository: string, cacheRepository?: string) {
  return prepareTask('PrivateAcrBuildImage', {
    inputs: {
      azureSubscription: 'arm',
      registry: setup.env.registry.host,
      repository,
      dockerfile: join(context, 'Dockerfile'),
      buildArgs: `BASE=${setup.base}`,
      tags: 'bench',
      builder: 'buildkit',
      buildkitAddress: setup.daemon.address,
      buildkitCertificates: setup.daemon.client.dir,
      ...(cacheRepository ? { cacheRepository } : {}),
    },
    connections: { arm: secretConnection(setup.env) },
    // As on an agent of the chart's pool: buildctl on PATH, the agent's CA setting.
    variables: { 'Agent.CAInfo': setup.env.ca.caCertPath },
    env: { PATH: `${BIN_DIR}:${process.env.PATH ?? '/usr/bin:/bin'}`, NODE_EXTRA_CA_CERTS: '' },
  });
}

async function runTaskTimed(setup: Setup, context: string, repository: string, cacheRepository?: string): Promise<Sample> {
  const task = ourTask(setup, context, repository, cacheRepository);
  try {
    return await timed(process.execPath, [task.script], task.env);
  } finally {
    await rm(task.tempDir, { recursive: true, force: true });
  }
}

function byHand(setup: Setup, context: string, repository: string): Promise<Sample> {
  return timed(
    BUILDCTL,
    [
      ...setup.daemon.connectionArgs(), 'build', '--frontend', 'dockerfile.v0', '--local', `context=${context}`, '--local', `dockerfile=${context}`,
      '--opt', `build-arg:BASE=${setup.base}`, '--opt', 'platform=linux/amd64', '--output', `type=image,name=${setup.env.registry.host}/${repository}:bench,push=true`,
    ],
    buildctlEnvironment(setup.env.ca, setup.dockerConfig),
  );
}

/** Empties the daemon's local cache (the pulled base included): every build after it starts cold. */
async function wipeLocalState(daemon: BuildkitDaemon): Promise<void> {
  await daemon.buildctl(['prune', '--all'], { timeoutMs: 120_000 });
}

export async function benchBuildBuildkit(): Promise<BenchReport[]> {
  const work = await mkdtemp(join(ROOT, '.cache', 'bench-buildkit-'));
  const task: Sample[] = [];
  const hand: Sample[] = [];
  const cold: Sample[] = [];
  const warm: Sample[] = [];
  let setup: Setup | undefined;
  try {
    const env = await startAcrEnvironment({ relativeUrls: true });
    const daemon = await startBuildkit({ ca: env.ca, dir: join(work, 'buildkitd'), registries: [env.registry.host] });
    const trust = await env.createClientTrust({ role: 'push', host: env.registry.host });
    await writeBusyboxBase(join(work, 'base'));
    await pushBase(join(work, 'base'), trust, 'bench/base', '1');
    setup = { env, daemon, base: `${env.registry.host}/bench/base:1`, dockerConfig: await dockerConfigFolder(work, trust.authFile) };
    const context = await writeContext(join(work, 'context'));
    for (let round = 0; round < RUNS; round++) {
      // Each into a repository of its own, so no run finds another's blobs; the order alternates.
      const pair: [Sample[], () => Promise<Sample>][] = [
        [task, () => runTaskTimed(setup!, context, `bench/task-${round}`)],
        [hand, () => byHand(setup!, context, `bench/hand-${round}`)],
      ];
      for (const [samples, build] of round % 2 ? pair.reverse() : pair) {
        await wipeLocalState(daemon);
        samples.push(await build());
      }
      // The registry cache: cold, then one code file changed on a builder with nothing local.
      const cached = await writeContext(join(work, `cached-${round}`));
      await wipeLocalState(daemon);
      cold.push(await runTaskTimed(setup, cached, `bench/cached-${round}`, `bench/cache-${round}`));
      await writeFile(join(cached, 'src', 'server.js'), `console.log("version ${round + 1}");\n`);
      await wipeLocalState(daemon);
      warm.push(await runTaskTimed(setup, cached, `bench/cached-${round}`, `bench/cache-${round}`));
    }
  } finally {
    await setup?.daemon.stop();
    await setup?.env.stop();
    await rm(work, { recursive: true, force: true });
  }
  const figures: ToolFigures[] = [
    { tool: 'PrivateAcrBuildImage task, builder: buildkit', samples: task },
    { tool: 'buildctl build … push=true by hand', samples: hand },
    { tool: 'task + cacheRepository, cold', samples: cold },
    { tool: 'task + cacheRepository, warm (state wiped)', samples: warm },
  ];
  const overhead = medianSeconds(figures[0]) / medianSeconds(figures[1]);
  const warmRatio = medianSeconds(figures[3]) / medianSeconds(figures[2]);
  return [
    {
      title: `Build a Dockerfile with RUN on BuildKit and push it (base from the registry with token auth, a 3 s + 24 MiB dependency step, ${RUNS} runs each, the daemon's local state pruned before every run)`,
      figures,
      targets: [
        { claim: 'the task takes at most 1.1x buildctl build … push=true by hand', met: overhead <= 1.1, detail: `task/by hand = ${overhead.toFixed(2)}` },
        { claim: 'after a code change, a builder with no local state takes at most 0.5x the cold build through the registry cache', met: warmRatio <= 0.5, detail: `warm/cold = ${warmRatio.toFixed(2)}` },
      ],
    },
  ];
}
