// The chart benchmark of the PrivateAcrPushChart issue: pushing the sample chart (a subchart, a
// schema, a .helmignore) with the bundled task, process start-up included, against what a pipeline
// does with the helm CLI: `helm registry login`, `helm package`, `helm push`. Both log in with the
// same credential, an ACR refresh token as the password of the 00000000-… user, so the comparison
// is of the work itself. One registry, rounds interleaved, every push into a fresh namespace.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACR_REFRESH_TOKEN_USERNAME } from '../test/env/acr.js';
import { startAcrEnvironment, testToolPath, type AcrEnvironment } from '../test/env/environment.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const SAMPLE_CHART = join(import.meta.dirname, '..', 'test', 'fixtures', 'charts', 'web');
const SAMPLE_ARCHIVE = 'web-1.2.3-rc.1+build.7.tgz';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

type Tool = (env: AcrEnvironment, namespace: string) => Promise<Sample>;

/** The task logs in with the same credential helm gets: the ACR refresh token as a registry password. */
const ourTask: Tool = async (env, namespace) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('push'));
  const task = prepareTask('PrivateAcrPushChart', {
    inputs: { authMode: 'registryCredentials', dockerRegistryServiceConnection: 'acr', registry: env.registry.host, chartPath: SAMPLE_CHART, repository: namespace },
    connections: { acr: { scheme: 'UsernamePassword', url: env.registry.url, parameters: { username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken } } },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
  });
  try {
    return await timed(process.execPath, [task.script], task.env);
  } finally {
    await rm(task.tempDir, { recursive: true, force: true });
  }
};

/** login + package + push: the three processes' wall and CPU times added, the largest peak RSS. */
const helmCli: Tool = async (env, namespace) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('push'));
  const dir = await mkdtemp(join(env.dir, 'bench-helm-'));
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, refreshToken, { mode: 0o600 });
  const registryConfig = join(dir, 'registry.json');
  const helm = testToolPath('helm');
  const toolEnv = { ...process.env, HELM_CACHE_HOME: join(dir, 'cache'), HELM_CONFIG_HOME: join(dir, 'config'), HELM_DATA_HOME: join(dir, 'data') };
  const trust = ['--ca-file', env.ca.caCertPath, '--registry-config', registryConfig];
  try {
    // The token goes in on stdin, as a pipeline should pass it; sh only does the redirection.
    const login = await timed('sh', ['-c', 'exec "$0" "$@" < "$TOKEN_FILE"', helm, 'registry', 'login', env.registry.host, '--username', ACR_REFRESH_TOKEN_USERNAME, '--password-stdin', ...trust], {
      ...toolEnv,
      TOKEN_FILE: tokenFile,
    });
    const packaged = await timed(helm, ['package', SAMPLE_CHART, '--destination', dir], toolEnv);
    const pushed = await timed(helm, ['push', join(dir, SAMPLE_ARCHIVE), `oci://${env.registry.host}/${namespace}`, ...trust], toolEnv);
    const steps = [login, packaged, pushed];
    const total = (pick: (step: Sample) => number) => steps.reduce((sum, step) => sum + pick(step), 0);
    return { seconds: total((step) => step.seconds), cpuSeconds: total((step) => step.cpuSeconds), peakRssMb: Math.max(...steps.map((step) => step.peakRssMb)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

export async function benchPushChart(): Promise<BenchReport[]> {
  const tools: [string, Tool][] = [
    ['PrivateAcrPushChart task', ourTask],
    ['helm registry login + helm package + helm push', helmCli],
  ];
  const figures: ToolFigures[] = tools.map(([tool]) => ({ tool, samples: [] }));
  const env = await startAcrEnvironment();
  try {
    for (let round = 0; round < RUNS; round++) {
      for (const [index, [, tool]] of tools.entries()) figures[index].samples.push(await tool(env, `bench-${index}-${round}`));
    }
  } finally {
    await env.stop();
  }
  const [ours, helm] = figures as [ToolFigures, ToolFigures];
  const ratio = medianSeconds(ours) / medianSeconds(helm);
  return [
    {
      title: `Package and push the sample chart (subchart, schema, .helmignore; ${RUNS} runs each, one registry)`,
      figures,
      targets: [{ claim: 'median at most helm registry login + package + push', met: ratio <= 1, detail: `task/helm = ${ratio.toFixed(2)}` }],
    },
  ];
}
