// The scan benchmark of the PrivateAcrScanImage issue: the bundled task (process start-up, registry
// login, database check, scan, SARIF and JUnit included) against a plain `trivy image` that writes
// SARIF, on the same image in the same registry with the same database, each run with an empty
// cache as every pipeline job starts with one. The database is made with trivy-db's fixture loader
// and padded with generated advisories to the size class of the real one, so the download and
// unpacking Trivy does weigh as they do in production.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ACR_REFRESH_TOKEN_USERNAME } from '../test/env/acr.js';
import { registryTrustArgs, startAcrEnvironment, testToolPath, writeRegistryAuthFile, type AcrEnvironment } from '../test/env/environment.js';
import { runTool } from '../test/env/processes.js';
import { buildTrivyDb, publishTrivyDb } from '../test/env/trivyDb.js';
import { TRIVY_DB_FIXTURES, writeVulnerableImage } from '../test/fixtures/vulnerableImage.js';
import { prepareTask } from '../test/support/taskRunner.js';
import { medianSeconds, timed, type BenchReport, type Sample, type ToolFigures } from './harness.js';

const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(ROOT, '.cache', 'bench');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** Generated packages; each gets advisories in both the OS and the npm bucket, and details. */
const PADDING_PACKAGES = 40_000;
const ADVISORIES_PER_PACKAGE = 5;
const MiB = 1024 * 1024;

/** A YAML bolt fixture of generated advisories, so the database has the bulk of a real one. */
async function paddingFixture(path: string): Promise<void> {
  const lines: string[] = ['- bucket: alpine 3.23', '  pairs:'];
  const details: string[] = ['- bucket: vulnerability', '  pairs:'];
  for (let pkg = 0; pkg < PADDING_PACKAGES; pkg++) {
    lines.push(`    - bucket: bench-package-${pkg}`, '      pairs:');
    for (let advisory = 0; advisory < ADVISORIES_PER_PACKAGE; advisory++) {
      const id = `CVE-2098-${pkg * ADVISORIES_PER_PACKAGE + advisory}`;
      lines.push(`        - key: ${id}`, '          value:', `            FixedVersion: 1.${advisory}.${pkg}-r0`);
      details.push(
        `    - key: ${id}`,
        '      value:',
        `        Title: "bench-package-${pkg}: generated advisory ${advisory} for the scan benchmark"`,
        `        Description: "A generated advisory that only pads the benchmark database to the size class of the real one; package ${pkg}, advisory ${advisory}, fixed in 1.${advisory}.${pkg}-r0."`,
        '        Severity: MEDIUM',
        `        References: ["https://example.invalid/advisories/${id}", "https://example.invalid/packages/bench-package-${pkg}"]`,
      );
    }
  }
  await writeFile(path, `${lines.join('\n')}\n${details.join('\n')}\n`);
}

interface Fixtures {
  database: string;
  layout: string;
}

/** Written once and kept under .cache/bench. */
async function fixtures(): Promise<Fixtures> {
  const dir = join(FIXTURES, `scan-db-${PADDING_PACKAGES * ADVISORIES_PER_PACKAGE}-advisories`);
  const database = join(dir, 'db.tar.gz');
  const layout = join(dir, 'image');
  if (!existsSync(database)) {
    await mkdir(dir, { recursive: true });
    const padding = join(dir, 'padding.yaml');
    await paddingFixture(padding);
    await buildTrivyDb(dir, { fixtures: [...TRIVY_DB_FIXTURES, padding], timeoutMs: 30 * 60_000 });
    await rm(padding);
  }
  if (!existsSync(join(layout, 'index.json'))) await writeVulnerableImage(layout);
  return { database, layout };
}

type Tool = (env: AcrEnvironment, image: string) => Promise<Sample>;

/** The task, logging in as a registry user with the ACR refresh token, as Trivy is given below. */
const ourTask: Tool = async (env, image) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('pull'));
  const task = prepareTask('PrivateAcrScanImage', {
    // Report only, and any database age: the cached benchmark database outlives the default 72h.
    inputs: { authMode: 'registryCredentials', dockerRegistryServiceConnection: 'acr', registry: env.registryHost, image, failOn: 'none', maxDatabaseAge: '3650d' },
    connections: { acr: { scheme: 'UsernamePassword', url: `https://${env.registryHost}`, parameters: { username: ACR_REFRESH_TOKEN_USERNAME, password: refreshToken } } },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath, PATH: `${join(ROOT, '.cache', 'bin')}:${process.env.PATH ?? ''}` },
  });
  try {
    return await timed(process.execPath, [task.script], task.env);
  } finally {
    await rm(task.tempDir, { recursive: true, force: true });
  }
};

/** What a pipeline would run by hand: the same login in a docker config, SARIF out, a fresh cache. */
const plainTrivy: Tool = async (env, image) => {
  const refreshToken = await env.acrRefreshToken(env.addServicePrincipal('pull'));
  const dir = await mkdtemp(join(env.dir, 'bench-trivy-'));
  try {
    await writeRegistryAuthFile(join(dir, 'config.json'), env.registryHost, ACR_REFRESH_TOKEN_USERNAME, refreshToken);
    const args = [
      'image', '--cache-dir', join(dir, 'cache'), '--db-repository', `${env.registryHost}/aquasecurity/trivy-db:2`, '--scanners', 'vuln',
      '--format', 'sarif', '--output', join(dir, 'report.sarif'), '--cacert', env.ca.caCertPath, '--no-progress', '--skip-version-check', '--disable-telemetry',
      '--image-src', 'remote', `${env.registryHost}/${image}`,
    ];
    return await timed(testToolPath('trivy'), args, { ...process.env, DOCKER_CONFIG: dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

export async function benchScanImage(): Promise<BenchReport[]> {
  const { database, layout } = await fixtures();
  const env = await startAcrEnvironment({ tokenServerOnRegistryOrigin: true });
  try {
    const pusher = await env.createClientTrust({ role: 'push' });
    await publishTrivyDb(database, `${env.registryHost}/aquasecurity/trivy-db:2`, pusher);
    await runTool('skopeo', ['copy', '--preserve-digests', ...registryTrustArgs.skopeoDestination(pusher), `oci:${layout}:latest`, `docker://${env.registryHost}/team/app:bench`]);
    const tools: [string, Tool][] = [['PrivateAcrScanImage task', ourTask], ['trivy image --format sarif', plainTrivy]];
    const figures: ToolFigures[] = tools.map(([tool]) => ({ tool, samples: [] }));
    // Interleaved rounds, so a slow moment of the machine hits both.
    for (let round = 0; round < RUNS; round++) {
      for (const [index, [, tool]] of tools.entries()) figures[index].samples.push(await tool(env, 'team/app:bench'));
    }
    const [ours, trivy] = figures as [ToolFigures, ToolFigures];
    const ratio = medianSeconds(ours) / medianSeconds(trivy);
    const size = (await stat(database)).size / MiB;
    return [
      {
        title: `Scan an image from the registry with a ${size.toFixed(0)} MiB database, empty cache (${RUNS} runs each)`,
        figures,
        targets: [{ claim: 'median at most 1.1x plain trivy image', met: ratio <= 1.1, detail: `task/trivy = ${ratio.toFixed(2)}` }],
      },
    ];
  } finally {
    await env.stop();
  }
}
