// The PrivateAcrPushImage benchmark: cold pushes (fresh, empty registry storage
// every run; the same registry build and TLS for every tool) of a 512 MiB / 8-layer OCI layout and
// a 256 MiB uncompressed docker save tarball, our bundled task (process start-up included) against
// skopeo and against @azure/container-registry's content client. The registry answers with relative
// upload Locations, as ACR does (the SDK handles no other kind).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startAcrEnvironment, registryTrustArgs, type AcrEnvironment } from '../test/env/environment.js';
import { formBody, request } from '../test/env/http.js';
import { makeLayers, writeDockerSave, writeOciLayout } from '../test/fixtures/images.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(ROOT, '.cache', 'bench');
const MiB = 1024 * 1024;
const run = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

interface Fixtures {
  layout: string;
  dockerSave: string;
}

/**
 * Layers of real image content: this machine's own libraries, programs and shared files, in
 * sorted order, as an image's layers carry them. How fast a layer compresses depends on what is in
 * it, so compressing made-up bytes would measure the made-up bytes.
 */
async function hostFileLayers(count: number, sizeEach: number): Promise<Buffer[]> {
  const { stdout } = await run('find', ['/usr/lib', '/usr/share', '/usr/bin', '/usr/local', '-xdev', '-type', 'f', '-size', '-8M', '-printf', '%s %p\\n'], { maxBuffer: 256 * MiB });
  const files = stdout
    .trim()
    .split('\n')
    .map((line) => {
      const space = line.indexOf(' ');
      // Relative to /, as tar stores them below.
      return { size: Number(line.slice(0, space)), path: line.slice(space + 1).replace(/^\//, '') };
    })
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  const layers: Buffer[] = [];
  let batch: string[] = [];
  let batchBytes = 0;
  for (const file of files) {
    if (layers.length === count) break;
    batch.push(file.path);
    batchBytes += file.size + 512;
    if (batchBytes < sizeEach) continue;
    layers.push(execFileSync('tar', ['-cf', '-', '-C', '/', '--owner=0', '--group=0', '--mtime=@0', '--no-recursion', '--files-from=-'], { input: batch.join('\n'), maxBuffer: 2 * sizeEach }));
    batch = [];
    batchBytes = 0;
  }
  if (layers.length < count) throw new Error(`this machine has too few files under /usr for ${count} layers of ${sizeEach / MiB} MiB`);
  return layers;
}

/** Written once and kept under .cache/bench: generating 768 MiB of layers takes longer than a push. */
async function fixtures(): Promise<Fixtures> {
  const layout = join(FIXTURES, 'layout-8-layers-512MiB-of-blobs');
  const dockerSave = join(FIXTURES, 'docker-save-256MiB-of-usr.tar');
  if (!existsSync(join(layout, 'index.json'))) {
    await rm(layout, { recursive: true, force: true });
    // The fixture content gzips to about half, so 126 MiB tars make blobs of about 64 MiB each.
    await writeOciLayout(layout, { layers: makeLayers(8, 126 * MiB, 512) });
  }
  if (!existsSync(dockerSave)) {
    const workDir = join(FIXTURES, 'docker-save-work');
    await mkdir(workDir, { recursive: true });
    await writeDockerSave(dockerSave, { layers: await hostFileLayers(4, 64 * MiB), format: 'legacy', workDir });
    await rm(workDir, { recursive: true, force: true });
  }
  return { layout, dockerSave };
}

type Tool = (env: AcrEnvironment, imagePath: string, kind: 'layout' | 'dockerSave') => Promise<Sample>;

const ourTask: Tool = async (env, imagePath) => {
  const principal = env.addServicePrincipal('push');
  const task = prepareTask('PrivateAcrPushImage', {
    inputs: { azureSubscription: 'arm', registry: env.registry.host, repository: 'benchimage', imagePath, tags: 'bench' },
    connections: {
      arm: {
        scheme: 'ServicePrincipal',
        parameters: { serviceprincipalid: principal.clientId, serviceprincipalkey: principal.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
        data: { environmentAuthorityUrl: env.entra.authorityUrl },
      },
    },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath },
  });
  try {
    return await timed(process.execPath, [task.script], task.env);
  } finally {
    await rm(task.tempDir, { recursive: true, force: true });
  }
};

const skopeo: Tool = async (env, imagePath, kind) => {
  const trust = await env.createClientTrust({ role: 'push', host: env.registry.host });
  const source = kind === 'layout' ? `oci:${imagePath}` : `docker-archive:${imagePath}`;
  return timed('skopeo', ['copy', '--quiet', ...registryTrustArgs.skopeoDestination(trust), source, `docker://${env.registry.host}/benchimage:bench`], process.env);
};

const azureSdk = (concurrency: number): Tool => async (env, imagePath) => {
  const principal = env.addServicePrincipal('push');
  const refreshToken = await env.acrRefreshToken(principal);
  const minted = await request(`${env.tokenServer.url}/oauth2/token`, {
    method: 'POST',
    ca: env.ca.caCertPem,
    ...formBody({ grant_type: 'refresh_token', service: env.registry.service, scope: 'repository:benchimage:pull,push', refresh_token: refreshToken }),
  });
  const tokenFile = join(env.dir, 'bench-access-token');
  await writeFile(tokenFile, (JSON.parse(minted.body) as { access_token: string }).access_token, { mode: 0o600 });
  return timed(process.execPath, [join(import.meta.dirname, 'sdk-push.mjs')], {
    ...process.env,
    NODE_EXTRA_CA_CERTS: env.ca.caCertPath,
    REGISTRY_URL: env.registry.url,
    REPOSITORY: 'benchimage',
    LAYOUT: imagePath,
    TAG: 'bench',
    ACCESS_TOKEN_FILE: tokenFile,
    CONCURRENCY: String(concurrency),
  });
};

async function folderBytes(dir: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', join(dir, 'blobs')]);
  return Number(stdout.split('\t')[0]);
}

/** Runs the tools in turn, RUNS rounds, each push into a freshly started, empty registry. */
async function measure(tools: Record<string, Tool>, imagePath: string, kind: 'layout' | 'dockerSave'): Promise<ToolFigures[]> {
  const figures = Object.keys(tools).map((tool) => ({ tool, samples: [] as Sample[] }));
  for (let round = 0; round < RUNS; round++) {
    for (const [index, tool] of Object.values(tools).entries()) {
      const env = await startAcrEnvironment({ relativeUrls: true });
      try {
        figures[index].samples.push(await tool(env, imagePath, kind));
      } finally {
        await env.stop();
      }
    }
  }
  return figures;
}

export async function benchPushImage(): Promise<BenchReport[]> {
  const { layout, dockerSave } = await fixtures();
  const layoutFigures = await measure(
    {
      'PrivateAcrPushImage task': ourTask,
      'skopeo copy': skopeo,
      'Azure SDK content client, blob by blob': azureSdk(1),
      'Azure SDK content client, 4 blobs at once': azureSdk(4),
    },
    layout,
    'layout',
  );
  const saveFigures = await measure({ 'PrivateAcrPushImage task': ourTask, 'skopeo copy': skopeo }, dockerSave, 'dockerSave');
  const [ours, skopeoLayout, sdk, sdkParallel] = layoutFigures as [ToolFigures, ToolFigures, ToolFigures, ToolFigures];
  const [oursSave, skopeoSave] = saveFigures as [ToolFigures, ToolFigures];
  const peak = (figures: ToolFigures) => Math.max(...figures.samples.map((sample) => sample.peakRssMb));
  const ratio = (a: ToolFigures, b: ToolFigures) => medianSeconds(a) / medianSeconds(b);
  return [
    {
      title: `Push an 8-layer OCI layout holding ${(await folderBytes(layout)) / MiB | 0} MiB of blobs (cold, ${RUNS} runs each)`,
      figures: layoutFigures,
      targets: [
        { claim: 'median at most skopeo\'s', met: ratio(ours, skopeoLayout) <= 1, detail: `task/skopeo = ${ratio(ours, skopeoLayout).toFixed(2)}` },
        {
          claim: 'at least 3x faster than the Azure SDK content client used as its samples do (blob by blob)',
          met: ratio(sdk, ours) >= 3,
          detail: `sdk/task = ${ratio(sdk, ours).toFixed(2)} (given 4 blobs at once: ${ratio(sdkParallel, ours).toFixed(2)})`,
        },
        { claim: 'peak RSS under 200 MB', met: peak(ours) < 200, detail: `${peak(ours).toFixed(0)} MB` },
      ],
    },
    {
      title: `Push a 256 MiB uncompressed docker save tarball of /usr files, 4 layers (cold, ${RUNS} runs each)`,
      figures: saveFigures,
      targets: [
        { claim: 'median at most skopeo\'s', met: ratio(oursSave, skopeoSave) <= 1, detail: `task/skopeo = ${ratio(oursSave, skopeoSave).toFixed(2)}` },
        { claim: 'peak RSS under 200 MB', met: peak(oursSave) < 200, detail: `${peak(oursSave).toFixed(0)} MB` },
      ],
    },
  ];
}
