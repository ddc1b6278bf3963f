// PrivateAcrScanImage@1 end to end: the bundled task, run as the agent runs it, scans with the real
// Trivy against the real registry (token endpoints on its own origin, as ACR serves them), using a
// vulnerability database the tests write with trivy-db's own fixture loader and publish as
// ghcr.io/aquasecurity/trivy-db is published. The image carries one planted OS-package and one
// planted npm-package vulnerability (test/fixtures/vulnerableImage.ts).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registryTrustArgs, startAcrEnvironment, testToolPath, type AcrEnvironment, type RegistryClientTrust } from '../env/environment.js';
import { runTool } from '../env/processes.js';
import { buildTrivyDb, publishTrivyDb } from '../env/trivyDb.js';
import { archiveFolder } from '../fixtures/images.js';
import { PLANTED, TRIVY_DB_FIXTURES, writeVulnerableImage } from '../fixtures/vulnerableImage.js';
import { assertFailedWith, assertNoSecretPrinted, assertSucceeded, registryTokenIdentity, secretConnection } from '../support/registryIdentities.js';
import { runTask, type TaskRun, type TaskRunOptions } from '../support/taskRunner.js';

const TASK = 'PrivateAcrScanImage';
const DAY_MS = 86_400_000;
let env: AcrEnvironment;
let work: string;
let pusher: RegistryClientTrust;
let imageDigest: string;
let layoutDir: string;
/** Folder with a `trivy` that records its argv and environment before running the real one. */
let trivyShim: string;

before(async () => {
  env = await startAcrEnvironment({ tokenServerOnRegistryOrigin: true });
  work = await mkdtemp(join(tmpdir(), 'scan-image-test-'));
  pusher = await env.createClientTrust({ role: 'push' });

  const fresh = await buildTrivyDb(join(work, 'db-fresh'), { fixtures: TRIVY_DB_FIXTURES });
  const stale = await buildTrivyDb(join(work, 'db-stale'), { fixtures: TRIVY_DB_FIXTURES, updatedAt: new Date(Date.now() - 5 * DAY_MS) });
  layoutDir = join(work, 'image');
  const image = await writeVulnerableImage(layoutDir);
  imageDigest = image.digest;
  await Promise.all([
    publishTrivyDb(fresh, `${pusher.host}/aquasecurity/trivy-db:2`, pusher),
    publishTrivyDb(stale, `${pusher.host}/stale/trivy-db:2`, pusher),
    runTool('skopeo', ['copy', '--preserve-digests', ...registryTrustArgs.skopeoDestination(pusher), `oci:${layoutDir}:latest`, `docker://${pusher.host}/team/app:1.0`]),
  ]);

  trivyShim = join(work, 'shim');
  await mkdir(trivyShim);
  await writeFile(
    join(trivyShim, 'trivy'),
    [
      '#!/bin/sh',
      '# Records what the task really handed Trivy (its arguments, its environment, the mode of its',
      '# docker config) and how Trivy ended; a TERM for this shell goes on to Trivy.',
      `log="${join(work, 'trivy-calls.log')}"`,
      'printf "pid %s\\n" "$$" >> "$log"',
      'printf "argv %s\\n" "$*" >> "$log"',
      'env | sed "s/^/env /" >> "$log"',
      'printf "config-mode %s\\n" "$(stat -c %a "$DOCKER_CONFIG/config.json")" >> "$log"',
      `"${testToolPath('trivy')}" "$@" &`,
      'child=$!',
      'trap \'printf "terminated\\n" >> "$log"; kill -TERM "$child" 2>/dev/null\' TERM INT',
      'wait "$child"; status=$?',
      'if kill -0 "$child" 2>/dev/null; then wait "$child"; status=$?; fi',
      'printf "exit %s\\n" "$status" >> "$log"',
      'exit "$status"',
      '',
    ].join('\n'),
  );
  await chmod(join(trivyShim, 'trivy'), 0o755);
});

after(async () => {
  await env?.stop();
  await rm(work, { recursive: true, force: true });
});

let runs = 0;
/** Runs the task as a fresh pull-only service principal; the SARIF report goes where the test can read it. */
async function scan(inputs: TaskRunOptions['inputs'], options: Omit<TaskRunOptions, 'inputs'> = {}): Promise<TaskRun & { sarif?: string }> {
  const reportPath = join(work, `report-${++runs}.sarif`);
  const run = await runTask(TASK, {
    ...options,
    connections: options.connections ?? { arm: secretConnection(env, 'pull') },
    inputs: { azureSubscription: 'arm', registry: env.registryHost, reportPath, ...inputs },
    env: { NODE_EXTRA_CA_CERTS: env.ca.caCertPath, PATH: `${trivyShim}:${process.env.PATH ?? ''}`, ...options.env },
    timeoutMs: 240_000,
  });
  assertNoSecretPrinted(env, run);
  return { ...run, sarif: await readFile(reportPath, 'utf8').catch(() => undefined) };
}

/** What a run left in the agent's temp folder besides its run summary and the agent's own key file. */
function filesLeft(run: TaskRun): string[] {
  return run.tempFilesLeft.filter((file) => file !== '.taskkey' && !/^PrivateAcrScanImage-summary-\d+\.md$/.test(file));
}

/** Vulnerability IDs the SARIF report names, sorted. */
function sarifRuleIds(sarif: string | undefined): string[] {
  const log = JSON.parse(sarif ?? '{}') as { version?: string; runs?: { tool: { driver: { name: string } }; results: { ruleId: string }[] }[] };
  assert.equal(log.version, '2.1.0');
  assert.equal(log.runs?.[0].tool.driver.name, 'Trivy');
  return [...new Set(log.runs[0].results.map((result) => result.ruleId))].sort();
}

const BOTH = [PLANTED.musl.id, PLANTED.lodash.id].sort();

/** A vulnerability ID in the summary table, linked to its advisory page when Trivy knows one. */
const linked = (id: string) => `(?:${id}|\\[${id}\\]\\([^)]+\\))`;

describe('scans an image in the registry', () => {
  test('by tag: both planted vulnerabilities fail the default gate, with their fixed versions reported everywhere', async () => {
    const run = await scan({ image: 'team/app:1.0' });
    assertFailedWith(run, new RegExp(`^2 vulnerabilities at CRITICAL, HIGH in ${env.registryHost}/team/app@${imageDigest} \\(${PLANTED.lodash.id}, ${PLANTED.musl.id}\\)`));
    assert.equal(run.outputs.vulnerabilities, '2');
    assert.deepEqual(sarifRuleIds(run.sarif), BOTH);
    const summary = run.summaries.join('\n');
    assert.match(summary, new RegExp(`\\| ${linked(PLANTED.lodash.id)} \\| lodash \\| 4\\.17\\.20 \\| 4\\.17\\.21 \\| CRITICAL \\| Node\\.js \\|`));
    assert.match(summary, new RegExp(`\\| ${linked(PLANTED.musl.id)} \\| musl \\| 1\\.2\\.5-r8 \\| 1\\.2\\.5-r9 \\| HIGH \\| .*alpine 3\\.23\\.2`));
    assert.doesNotMatch(summary, new RegExp(PLANTED.busybox.id), 'ignoreUnfixed is on by default');
    const [junit] = run.testResults;
    assert.equal(junit.type, 'JUnit');
    assert.equal((junit.files[0].content.match(/<failure /g) ?? []).length, 2);
    // The databases came from the private registry, through the same registry login.
    const tokenRequests = env.tokenServer.requests.filter((request) => request.scopes.some((scope) => scope.startsWith('repository:aquasecurity/trivy-db:')));
    assert.ok(tokenRequests.some((request) => request.status === 200));
  });

  test('by digest, as a registry user (authMode registryCredentials)', async () => {
    const identity = registryTokenIdentity(env, ['team/app', 'aquasecurity/trivy-db', 'aquasecurity/trivy-java-db']);
    const run = await scan({ image: `${env.registryHost}/team/app@${imageDigest}`, ...identity.inputs }, identity.options);
    assertFailedWith(run, /^2 vulnerabilities at CRITICAL, HIGH/);
    assert.deepEqual(sarifRuleIds(run.sarif), BOTH);
  });
});

describe('scans an image on disk before it is pushed', () => {
  test('an OCI image layout folder', async () => {
    const run = await scan({ imagePath: layoutDir });
    assertFailedWith(run, new RegExp(`^2 vulnerabilities at CRITICAL, HIGH in ${layoutDir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.deepEqual(sarifRuleIds(run.sarif), BOTH);
  });

  test('an OCI archive, gzipped (Trivy cannot open one itself)', async () => {
    const archive = join(work, 'image.oci.tar.gz');
    await archiveFolder(layoutDir, archive, { gzip: true });
    const run = await scan({ imagePath: archive });
    assertFailedWith(run, /^2 vulnerabilities at CRITICAL, HIGH/);
    assert.deepEqual(sarifRuleIds(run.sarif), BOTH);
  });
});

describe('the gate', () => {
  test('ignoreFile drops a listed vulnerability; with failOn CRITICAL what is left passes', async () => {
    const ignoreFile = join(work, '.trivyignore');
    await writeFile(ignoreFile, `# accepted until the base image moves\n${PLANTED.lodash.id}\n`);
    const passed = await scan({ image: 'team/app:1.0', ignoreFile, failOn: 'CRITICAL' });
    assertSucceeded(passed);
    assert.equal(passed.outputs.vulnerabilities, '0');
    assert.deepEqual(sarifRuleIds(passed.sarif), [PLANTED.musl.id], 'the HIGH finding is still reported');
    assert.match(passed.testResults[0].files[0].content, /<skipped message="HIGH is reported, not gated \(failOn: CRITICAL\)"\/>/);

    const failed = await scan({ image: 'team/app:1.0', ignoreFile });
    assertFailedWith(failed, new RegExp(`^1 vulnerability at CRITICAL, HIGH .*\\(${PLANTED.musl.id}\\)`));
  });

  test('ignoreUnfixed off brings the vulnerability without a fix, which failOn MEDIUM then gates', async () => {
    const run = await scan({ image: 'team/app:1.0', ignoreUnfixed: 'false', failOn: 'MEDIUM' });
    assertFailedWith(run, new RegExp(`^1 vulnerability at MEDIUM .*\\(${PLANTED.busybox.id}\\)`));
    assert.deepEqual(sarifRuleIds(run.sarif), [...BOTH, PLANTED.busybox.id].sort());
    assert.match(run.summaries.join('\n'), new RegExp(`\\| ${linked(PLANTED.busybox.id)} \\| busybox \\| 1\\.37\\.0-r20 \\| — \\| MEDIUM \\|`));
  });

  test('a database older than maxDatabaseAge fails with its age and the import that refreshes it', async () => {
    const run = await scan({ image: 'team/app:1.0', databaseRepository: 'stale/trivy-db:2' });
    assertFailedWith(run, new RegExp(`^The vulnerability database ${env.registryHost}/stale/trivy-db:2 is 5d old \\(built .*\\), older than maxDatabaseAge 3d: refresh it with the scheduled PrivateAcrImport step \\(images: ghcr\\.io/aquasecurity/trivy-db:2 stale/trivy-db:2\\)`));
    const accepted = await scan({ image: 'team/app:1.0', databaseRepository: 'stale/trivy-db:2', maxDatabaseAge: '6d' });
    assertFailedWith(accepted, /^2 vulnerabilities at CRITICAL, HIGH/);
  });

  test('a missing database repository fails in one line naming it', async () => {
    const run = await scan({ image: 'team/app:1.0', databaseRepository: 'mirror/trivy-db:2' });
    assertFailedWith(run, new RegExp(`^Input 'databaseRepository': ${env.registryHost}/mirror/trivy-db:2 does not exist in the registry \\(MANIFEST_UNKNOWN\\); refresh it with the scheduled PrivateAcrImport step`));
  });

  test('a missing image fails in one line naming it', async () => {
    const run = await scan({ image: 'team/app:9.9' });
    assertFailedWith(run, new RegExp(`^Input 'image': ${env.registryHost}/team/app:9\\.9 does not exist in the registry`));
  });
});

test('no secret reaches Trivy on its command line or any log, and its private folder is gone afterwards', async () => {
  const logPath = join(work, 'trivy-calls.log');
  await rm(logPath, { force: true });
  const run = await scan({ image: 'team/app:1.0' });
  assertFailedWith(run, /^2 vulnerabilities/);
  const calls = await readFile(logPath, 'utf8');
  const argvLines = calls.split('\n').filter((line) => line.startsWith('argv '));
  assert.equal(argvLines.length, 1, 'one Trivy process per scan');
  assert.ok(run.registeredSecrets.length > 0, 'the refresh token and the docker auth are registered as secrets');
  for (const secret of [...env.secrets(), ...run.registeredSecrets]) {
    assert.ok(!argvLines.some((line) => line.includes(secret)), `a secret is on Trivy's command line: ${secret.slice(0, 12)}…`);
  }
  const envLines = calls.split('\n').filter((line) => line.startsWith('env '));
  assert.ok(!envLines.some((line) => /^env (TRIVY_(USERNAME|PASSWORD|REGISTRY_TOKEN))=/.test(line)));
  for (const secret of run.registeredSecrets) assert.ok(!envLines.some((line) => line.includes(secret)), 'credentials stay in the docker config file');
  assert.ok(calls.split('\n').filter((line) => line.startsWith('config-mode ')).every((line) => line === 'config-mode 600'));
  const dockerConfig = envLines.find((line) => line.startsWith('env DOCKER_CONFIG='))!.slice('env DOCKER_CONFIG='.length);
  assert.match(dockerConfig, /\/task-[^/]+\/scan-image-[^/]+$/, "the docker config is in the task's private folder");
  assert.deepEqual(filesLeft(run), [], 'the private folder was removed');
});

describe('inputs a pipeline can get wrong', () => {
  const cases: [string, TaskRunOptions['inputs'], RegExp][] = [
    ['both image and imagePath', { image: 'team/app:1.0', imagePath: 'image' }, /^Input 'image': and imagePath are both set/],
    ['neither image nor imagePath', {}, /^Input 'image': is empty; name the image in the registry/],
    ['an image in another registry', { image: 'ghcr.io/team/app:1.0' }, /^Input 'image': names the registry ghcr\.io, but registry is /],
    ['an image without tag or digest', { image: 'team/app' }, /^Input 'image': 'team\/app' names no tag or digest/],
    ['an unknown severity', { image: 'team/app:1.0', failOn: 'CRITICAL,URGENT' }, /^Input 'failOn': 'URGENT' is not a severity/],
    ['an age that is no duration', { image: 'team/app:1.0', maxDatabaseAge: 'three days' }, /^Input 'maxDatabaseAge': 'three days' is not a duration; write seconds or a value such as 5m, 72h, 3d or 1h30m\.$/],
    ['an image path that is not an image', { imagePath: join(import.meta.dirname, 'scanImage.test.ts') }, /^imagePath .*scanImage\.test\.ts is not a valid tar archive/],
    ['an image path that does not exist', { imagePath: join(import.meta.dirname, 'no-such-image') }, /^Input 'imagePath': .*no-such-image does not exist/],
  ];
  for (const [name, inputs, message] of cases) test(name, async () => assertFailedWith(await scan(inputs), message));

  test('an agent without trivy says where to get it', async () => {
    const run = await scan({ image: 'team/app:1.0' }, { env: { PATH: '/usr/bin:/bin' } });
    assertFailedWith(run, /^trivy was not found \(trivy\); use the agent image, which ships it, or put trivy on the agent's PATH\.$/);
  });
});

test('a cancelled run stops Trivy and removes its private folder', async () => {
  const logPath = join(work, 'trivy-calls.log');
  await rm(logPath, { force: true });
  const run = await scan(
    { image: 'team/app:1.0' },
    {
      // Cancel once Trivy runs, as the agent does: SIGINT to the task's process.
      whileRunning: async (task) => {
        for (let waited = 0; !/^pid \d+$/m.test(await readFile(logPath, 'utf8').catch(() => '')); waited += 50) {
          if (waited > 30_000) throw new Error('Trivy did not start');
          await sleep(50);
        }
        assert.ok(readdirSync(task.tempDir, { recursive: true, encoding: 'utf8' }).some((file) => /scan-image-[^/.]+\/config\.json$/.test(file)), 'the login is on disk while Trivy runs');
        task.kill('SIGINT');
      },
    },
  );
  assert.equal(run.result, 'Failed');
  assert.match(run.message ?? '', /^Cancelled \(SIGINT\)/);
  assert.equal(run.exitCode, 1);
  assert.deepEqual(filesLeft(run), []);
  let calls = '';
  for (let waited = 0; !/^exit \d+$/m.test(calls) && waited < 30_000; waited += 50) {
    calls = await readFile(logPath, 'utf8');
    await sleep(50);
  }
  assert.match(calls, /^exit \d+$/m, 'Trivy ended');
  assert.match(calls, /^terminated$/m, 'the task sent Trivy SIGTERM rather than leave it running on its own');
});
