// The import benchmark of the PrivateAcrImport issue: copying one multi-platform index shaped like
// the official images on Docker Hub (six platforms, each with six layers of its own over three
// shared ones, a few MiB each) from a "public" registry into the private one, with the bundled task (process start-up included) against `skopeo copy --all` of
// the same index. Every copy goes into a freshly started, empty private registry (skopeo remembers
// where it saw blobs and would mount them from an earlier copy's repository); both read the source
// anonymously and write with an ACR refresh token.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACR_REFRESH_TOKEN_USERNAME } from '../test/env/acr.js';
import { registryTrustArgs, startAcrEnvironment, type AcrEnvironment } from '../test/env/environment.js';
import { runTool } from '../test/env/processes.js';
import { startPublicRegistry, type PublicRegistry } from '../test/env/publicRegistry.js';
import { makeLayers, sha256, writeOciLayout } from '../test/fixtures/images.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { median, medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURE = join(ROOT, '.cache', 'bench', 'index-6-platforms-9-layers');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MiB = 1024 * 1024;
const PLATFORMS = ['amd64', 'arm64', 'arm', 'ppc64le', 's390x', 'riscv64'];

/** Six single-platform layouts written into one folder, then one index over them (written once, kept). */
async function fixture(): Promise<string> {
  if (existsSync(join(FIXTURE, 'index.json'))) return FIXTURE;
  await rm(FIXTURE, { recursive: true, force: true });
  // The fixture content gzips to about half: 4 MiB tars make blobs of about 2 MiB.
  const shared = makeLayers(3, 4 * MiB, 900);
  const manifests = [];
  for (const [index, architecture] of PLATFORMS.entries()) {
    const { digest } = await writeOciLayout(FIXTURE, { layers: [...shared, ...makeLayers(6, 4 * MiB, 910 + index * 10)] });
    const bytes = await readFile(join(FIXTURE, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    // writeOciLayout names every config amd64; the index entry is what platform filters read.
    manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: bytes.length, platform: { architecture, os: 'linux' } });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  await writeFile(join(FIXTURE, 'blobs', 'sha256', sha256(index).slice('sha256:'.length)), index);
  await writeFile(
    join(FIXTURE, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': '1' } }] }),
  );
  return FIXTURE;
}

type Tool = (env: AcrEnvironment, source: PublicRegistry, caBundle: string, repository: string) => Promise<Sample>;

const ourTask: Tool = async (env, source, caBundle, repository) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('push'));
  const task = prepareTask('PrivateAcrImport', {
    inputs: { authMode: 'registryCredentials', dockerRegistryServiceConnection: 'acr', registry: env.registry.host, images: `${source.host}/bench/multi:1 ${repository}:1` },
    connections: { acr: { scheme: 'UsernamePassword', url: env.registry.url, parameters: { username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken } } },
    env: { NODE_EXTRA_CA_CERTS: caBundle },
  });
  try {
    return await timed(process.execPath, [task.script], task.env);
  } finally {
    await rm(task.tempDir, { recursive: true, force: true });
  }
};

const skopeo: Tool = async (env, source, _caBundle, repository) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('push'));
  const trust = await env.clientTrustFor({ username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken, host: env.registry.host });
  const sourceCerts = join(env.dir, 'bench-source-certs');
  await mkdir(sourceCerts, { recursive: true });
  await writeFile(join(sourceCerts, 'ca.crt'), source.ca.caCertPem);
  return timed(
    'skopeo',
    ['copy', '--all', '--preserve-digests', '--quiet', '--src-cert-dir', sourceCerts, '--src-no-creds', ...registryTrustArgs.skopeoDestination(trust), `docker://${source.host}/bench/multi:1`, `docker://${env.registry.host}/${repository}:1`],
    process.env,
  );
};

export async function benchImportImage(): Promise<BenchReport[]> {
  const layout = await fixture();
  const source = await startPublicRegistry();
  try {
    const seeder = await source.clientTrust(source.addUser());
    await runTool('skopeo', ['copy', '--all', '--preserve-digests', ...registryTrustArgs.skopeoDestination(seeder), `oci:${layout}:1`, `docker://${source.host}/bench/multi:1`], { timeoutMs: 600_000 });
    const tools: [string, Tool][] = [['PrivateAcrImport task', ourTask], ['skopeo copy --all', skopeo]];
    const figures: ToolFigures[] = tools.map(([tool]) => ({ tool, samples: [] }));
    for (let round = 0; round < RUNS; round++) {
      for (const [index, [, tool]] of tools.entries()) {
        const env = await startAcrEnvironment();
        try {
          const caBundle = join(env.dir, 'bench-ca-bundle.pem');
          await writeFile(caBundle, `${env.ca.caCertPem}\n${source.ca.caCertPem}`);
          figures[index].samples.push(await tool(env, source, caBundle, 'bench/multi'));
        } finally {
          await env.stop();
        }
      }
    }
    const [ours, peer] = figures as [ToolFigures, ToolFigures];
    const ratio = medianSeconds(ours) / medianSeconds(peer);
    // Interleaved rounds: the ratio within a round cancels what the shared machine carries at that moment.
    const paired = median(ours.samples.map((sample, round) => sample.seconds / peer.samples[round].seconds));
    const { stdout } = await runTool('du', ['-sb', join(layout, 'blobs')]);
    return [
      {
        title: `Import a 6-platform index (39 layers, 6 configs, ${(Number(stdout.split('\t')[0]) / MiB).toFixed(0)} MiB of blobs) from another registry (${RUNS} runs each)`,
        figures,
        targets: [{ claim: 'at most 0.8x skopeo copy --all', met: paired <= 0.8, detail: `task/skopeo = ${paired.toFixed(2)} (median of the rounds' ratios; of the medians: ${ratio.toFixed(2)})` }],
      },
    ];
  } finally {
    await source.stop();
  }
}
