// BuildKit as the oracle: each scenario's Dockerfile and context are built by a real buildkitd
// (root, runc, OCI worker, mTLS, base pulled from the test registry with token auth) and by the
// assemble builder, and the two images must have the same config and the same flattened file
// system (path, type, mode, owner, group, link count, link target, content).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { assembleImage, writeAssembledLayout } from '../../src/build/assemble.js';
import { silentLogger } from '../../src/log.js';
import { buildctlEnvironment, dockerConfigFolder, startBuildkit, type BuildkitDaemon } from '../env/buildkit.js';
import { startAcrEnvironment, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { pushBase, writeBusyboxBase } from '../fixtures/baseImages.js';
import { imageContents, type ImageContents } from '../support/imageFiles.js';
import { coreSession } from '../support/registryIdentities.js';
import type { RegistrySession } from '../../src/acr/session.js';
import { RegistryImageReader } from '../../src/build/registryImages.js';
import { scenarios, type Scenario } from './scenarios.js';

let env: AcrEnvironment;
let buildkit: BuildkitDaemon;
let work: string;
let trust: RegistryClientTrust;
let dockerConfig: string;
let base: string;
let session: RegistrySession;


before(async () => {
  work = await mkdtemp(join(tmpdir(), 'build-oracle-'));
  env = await startAcrEnvironment();
  buildkit = await startBuildkit({ ca: env.ca, dir: join(work, 'buildkit'), registries: [env.registry.host] });
  trust = await env.createClientTrust({ role: 'push' });
  dockerConfig = await dockerConfigFolder(work, trust.authFile);
  const layout = join(work, 'base-layout');
  await writeBusyboxBase(layout, { config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'BASE_VAR=from-base'], Labels: { 'org.example.base': 'busybox' } } });
  await pushBase(layout, trust, 'base/busybox', '1');
  base = `${env.registry.host}/base/busybox:1`;
  session = coreSession(env);
});

after(async () => {
  await session?.close();
  await buildkit?.stop();
  await env?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function buildWithBuildkit(scenario: Scenario, context: string, out: string): Promise<ImageContents> {
  const opts = Object.entries(scenario.buildArgs ?? {}).flatMap(([name, value]) => ['--opt', `build-arg:${name}=${value}`]);
  if (scenario.target) opts.push('--opt', `target=${scenario.target}`);
  await buildkit.buildctl(
    ['build', '--frontend', 'dockerfile.v0', '--local', `context=${context}`, '--local', `dockerfile=${context}`, '--opt', 'platform=linux/amd64', ...opts, '--output', `type=oci,dest=${out},tar=false`],
    { env: buildctlEnvironment(env.ca, dockerConfig) },
  );
  return imageContents(out);
}

async function buildWithAssemble(scenario: Scenario, context: string, out: string): Promise<ImageContents> {
  const reader = new RegistryImageReader(session, work);
  const image = await assembleImage({
    dockerfile: join(context, 'Dockerfile'),
    context,
    buildArgs: new Map(Object.entries(scenario.buildArgs ?? {})),
    target: scenario.target,
    platforms: [{ os: 'linux', architecture: 'amd64' }],
    labels: {},
    reader,
    tempDir: work,
    logger: silentLogger,
  });
  try {
    await writeAssembledLayout(image, reader, out);
  } finally {
    await image.close();
  }
  return imageContents(out);
}

/** The config fields a container runtime acts on; our OCI base labels are left out (BuildKit adds none). */
function runtimeConfig(contents: ImageContents): Record<string, unknown> {
  const config = { ...contents.config.config };
  const labels = { ...(config.Labels as Record<string, string> | undefined) };
  delete labels['org.opencontainers.image.base.name'];
  delete labels['org.opencontainers.image.base.digest'];
  config.Labels = Object.keys(labels).length > 0 ? labels : undefined;
  const fields = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'];
  return Object.fromEntries(fields.map((field) => [field, config[field] ?? null]));
}

void describe('assemble builds what BuildKit builds', { timeout: 15 * 60_000 }, () => {
  for (const [index, scenario] of scenarios('BASE-PLACEHOLDER').entries()) {
    void test(scenario.name, async () => {
      const named = scenarios(base)[index];
      const context = join(work, `context-${index}`);
      await mkdir(context, { recursive: true });
      await named.write(context);
      const expected = await buildWithBuildkit(named, context, join(work, `buildkit-${index}`));
      const actual = await buildWithAssemble(named, context, join(work, `assemble-${index}`));
      assert.deepEqual(runtimeConfig(actual), runtimeConfig(expected));
      assert.equal(actual.config.architecture, expected.config.architecture);
      assert.equal(actual.config.os, expected.config.os);
      assert.deepEqual(actual.files, expected.files);
    });
  }
});
