// agent-image/start.sh against the fake agent (issue 5): every mode with PAT and service-principal
// registration, the drain on SIGTERM/SIGINT, deregistration retries, and the env checks.
// Workload identity, which needs the Entra stand-in, is in workload-identity.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  type ConfigRecord,
  Sandbox,
  assertListenerEnvironment,
  eventNames,
  fakeAgentSource,
  processEnvironment,
  repoRoot,
  secretValue,
  sha256,
} from './harness.js';

type Auth = 'pat' | 'sp';
type Mode = 'persistent' | 'ephemeral' | 'placeholder';

/** The secret a registration uses, its file, and the env that selects it. */
async function credentials(sandbox: Sandbox, auth: Auth): Promise<{ secret: string; env: Record<string, string> }> {
  if (auth === 'pat') {
    const secret = secretValue('pat');
    return { secret, env: { AZP_AUTH: 'pat', AZP_TOKEN_FILE: await sandbox.secretFile('pat', secret) } };
  }
  const secret = secretValue('client-secret');
  return {
    secret,
    env: {
      AZP_AUTH: 'sp',
      AZP_CLIENT_ID: '11111111-2222-3333-4444-555555555555',
      AZP_TENANT_ID: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee',
      AZP_CLIENT_SECRET_FILE: await sandbox.secretFile('client-secret', secret),
    },
  };
}

function baseEnv(mode: Mode): Record<string, string> {
  return { AZP_URL: 'https://dev.azure.com/contoso', AZP_POOL: 'private-aks', AZP_AGENT_NAME: 'agent-0', AZP_MODE: mode };
}

/** What every config.sh call must show: the right credential, and never on the command line. */
function assertCredential(record: ConfigRecord, auth: Auth, secret: string): void {
  assert.deepEqual(record.secretsOnCommandLine, [], `${record.command}: a secret was on config.sh's command line`);
  if (auth === 'pat') {
    assert.equal(record.auth, 'PAT');
    assert.equal(record.tokenSha256, sha256(secret));
    assert.deepEqual(record.envInputs, ['token']);
  } else {
    assert.equal(record.auth, 'SP');
    assert.equal(record.clientId, '11111111-2222-3333-4444-555555555555');
    assert.equal(record.tenantId, 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee');
    assert.equal(record.clientSecretSha256, sha256(secret));
    assert.deepEqual(record.envInputs, ['clientsecret']);
  }
  assert.ok(!record.argv.join(' ').includes(secret));
}

void describe('start.sh registers and runs the agent', () => {
  for (const auth of ['pat', 'sp'] as const) {
    void test(`${auth}, persistent: runs jobs until SIGTERM, then deregisters`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const { secret, env } = await credentials(sandbox, auth);
      const run = sandbox.start({ ...baseEnv('persistent'), ...env });

      await assertListenerEnvironment(sandbox, secret);
      await sandbox.queueJob('job-1', 0.2);
      await sandbox.waitForEvent('job-finished', 'job-1');
      await sandbox.queueJob('job-2', 0.2);
      await sandbox.waitForEvent('job-finished', 'job-2');
      run.child.kill('SIGTERM');
      const exit = await run.exited;

      assert.equal(exit.code, 0, exit.stderr);
      const records = await sandbox.configRecords();
      assert.deepEqual(records.map((r) => `${r.command} ${r.result}`), ['configure ok', 'remove ok']);
      const [configure] = records;
      assert.equal(configure.url, 'https://dev.azure.com/contoso');
      assert.equal(configure.pool, 'private-aks');
      assert.equal(configure.agent, 'agent-0');
      assert.equal(configure.replace, true);
      for (const record of records) assertCredential(record, auth, secret);
      assert.deepEqual(await sandbox.registeredAgents(), []);

      const workerEnvironment = (await sandbox.allLogText()) + exit.stdout + exit.stderr;
      assert.ok(!workerEnvironment.includes(secret), 'the secret is in a log or a job environment');
    });

    void test(`${auth}, ephemeral: runs one job with run.sh --once, then deregisters and exits`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const { secret, env } = await credentials(sandbox, auth);
      const run = sandbox.start({ ...baseEnv('ephemeral'), ...env });

      await assertListenerEnvironment(sandbox, secret);
      assert.equal((await sandbox.waitForEvent('listener-started')).details.split(' ')[1], 'once=true');
      await sandbox.queueJob('only-job', 0.3);
      const exit = await run.exited;

      assert.equal(exit.code, 0, exit.stderr);
      assert.deepEqual(eventNames(await sandbox.events()), [
        'configured agent-0',
        'listener-started once=true',
        'job-started only-job',
        'job-finished only-job',
        'listener-stopped',
        'removed agent-0',
      ]);
      for (const record of await sandbox.configRecords()) assertCredential(record, auth, secret);
      assert.deepEqual(await sandbox.registeredAgents(), []);
      assert.ok(!((await sandbox.allLogText()) + exit.stdout + exit.stderr).includes(secret));
    });

    void test(`${auth}, placeholder: registers and exits 0 without starting the listener`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const { secret, env } = await credentials(sandbox, auth);
      const exit = await sandbox.start({ ...baseEnv('placeholder'), ...env }).exited;

      assert.equal(exit.code, 0, exit.stderr);
      assert.deepEqual(eventNames(await sandbox.events()), ['configured agent-0']);
      const records = await sandbox.configRecords();
      assert.equal(records.length, 1);
      assertCredential(records[0], auth, secret);
      // Capabilities are reported at registration too: credential sources stay out of them there.
      const capabilities = records[0].capabilities;
      assert.equal(capabilities.AZP_POOL, 'private-aks');
      for (const name of ['AZP_TOKEN_FILE', 'AZP_CLIENT_SECRET_FILE', 'AZP_CLIENT_ID', 'AZP_TENANT_ID']) assert.ok(!(name in capabilities), name);
      // The placeholder stays in the pool: KEDA's parent agent, whose capabilities jobs match.
      assert.deepEqual(await sandbox.registeredAgents(), ['agent-0']);
      assert.ok(!((await sandbox.allLogText()) + exit.stdout + exit.stderr).includes(secret));
    });
  }

  void test('the CA certificate and proxy reach the agent options, and the CA reaches Node', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const caFile = path.join(sandbox.root, 'corporate-ca.pem');
    await writeFile(caFile, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env, AZP_CA_CERT_FILE: caFile, AZP_PROXY_URL: 'http://proxy.corp:3128' });

    const environment = await processEnvironment(await sandbox.listenerPid());
    assert.ok(environment.includes(`NODE_EXTRA_CA_CERTS=${caFile}`));
    run.child.kill('SIGTERM');
    assert.equal((await run.exited).code, 0);
    const [configure] = await sandbox.configRecords();
    assert.equal(configure.sslCaCert, caFile);
    assert.equal(configure.proxyUrl, 'http://proxy.corp:3128');
  });

  void test('a registration left in the agent folder by an earlier run is removed before registering again', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    assert.equal((await sandbox.start({ ...baseEnv('placeholder'), ...env }).exited).code, 0);
    const exit = await sandbox.start({ ...baseEnv('placeholder'), ...env, AZP_AGENT_NAME: 'agent-1' }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(eventNames(await sandbox.events()), ['configured agent-0', 'removed agent-0', 'configured agent-1']);
    assert.deepEqual(await sandbox.registeredAgents(), ['agent-1']);
  });

  void test('a failed registration exits 1 without starting the listener', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    assert.equal((await sandbox.start({ ...baseEnv('placeholder'), ...env }).exited).code, 0);
    // The stale registration cannot be removed, so config.sh refuses to configure over it.
    const exit = await sandbox.start({ ...baseEnv('persistent'), ...env, FAKE_AGENT_REMOVE_FAILURES: '99' }).exited;

    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /^start\.sh: registration failed$/m);
    assert.ok(!(await sandbox.events()).some((e) => e.name === 'listener-started'));
  });
});

void describe('start.sh drains on SIGTERM and SIGINT', () => {
  void test('SIGTERM mid-job: the job completes, then the listener stops and the agent deregisters', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env });
    await sandbox.queueJob('long-job', 3);
    const started = await sandbox.waitForEvent('job-started', 'long-job');
    run.child.kill('SIGTERM');
    const signalledAt = Date.now();
    const exit = await run.exited;

    assert.equal(exit.code, 0, exit.stderr);
    const events = await sandbox.events();
    assert.deepEqual(eventNames(events), [
      'configured agent-0',
      'listener-started once=false',
      'job-started long-job',
      'job-finished long-job',
      'listener-signal SIGTERM',
      'listener-stopped',
      'removed agent-0',
    ]);
    const finished = events.find((e) => e.name === 'job-finished');
    assert.ok(finished && finished.at - started.at >= 2900, 'the job ran its full length');
    assert.ok(finished.at > signalledAt, 'the job was still running when SIGTERM arrived');
    assert.match(exit.stderr, /^start\.sh: waiting up to 3600s for the running job to finish$/m);
    assert.deepEqual(await sandbox.registeredAgents(), []);
  });

  void test('a job still running at AZP_DRAIN_TIMEOUT is cancelled and the agent still deregisters', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env, AZP_DRAIN_TIMEOUT: '1' });
    await sandbox.queueJob('endless-job', 60);
    await sandbox.waitForEvent('job-started', 'endless-job');
    run.child.kill('SIGTERM');
    const exit = await run.exited;

    assert.equal(exit.code, 0, exit.stderr);
    const names = eventNames(await sandbox.events());
    // start.sh signals the listener's process group, so the job and the listener see SIGTERM at the
    // same moment and either may log first; what matters is that both stop before deregistration.
    const after = names.slice(2);
    assert.equal(after[0], 'job-started endless-job');
    assert.deepEqual(after.slice(1, 3).sort(), ['job-cancelled endless-job', 'listener-signal SIGTERM']);
    assert.deepEqual(after.slice(3), ['listener-stopped', 'removed agent-0']);
    assert.match(exit.stderr, /drain timeout reached: the running job is cancelled/);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    void test(`${signal} while idle: deregisters at once`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const { env } = await credentials(sandbox, 'pat');
      const run = sandbox.start({ ...baseEnv('persistent'), ...env });
      await sandbox.listenerPid();
      const signalledAt = Date.now();
      run.child.kill(signal);
      const exit = await run.exited;

      assert.equal(exit.code, 0, exit.stderr);
      assert.deepEqual(eventNames(await sandbox.events()), [
        'configured agent-0',
        'listener-started once=false',
        'listener-signal SIGTERM',
        'listener-stopped',
        'removed agent-0',
      ]);
      assert.ok(Date.now() - signalledAt < 5000, 'an idle agent stops without waiting');
    });
  }

  void test('SIGTERM mid-job in ephemeral mode: the one job completes before deregistration', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'sp');
    const run = sandbox.start({ ...baseEnv('ephemeral'), ...env });
    await sandbox.queueJob('job', 2);
    await sandbox.waitForEvent('job-started', 'job');
    run.child.kill('SIGTERM');
    const exit = await run.exited;

    assert.equal(exit.code, 0, exit.stderr);
    const names = eventNames(await sandbox.events());
    assert.ok(names.includes('job-finished job') && !names.includes('job-cancelled job'), names.join('\n'));
    assert.equal(names.at(-1), 'removed agent-0');
  });

  void test('deregistration is retried until Azure DevOps accepts it', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env, FAKE_AGENT_REMOVE_FAILURES: '2' });
    await sandbox.listenerPid();
    run.child.kill('SIGTERM');
    const exit = await run.exited;

    assert.equal(exit.code, 0, exit.stderr);
    const removals = (await sandbox.configRecords()).filter((r) => r.command === 'remove').map((r) => r.result);
    assert.deepEqual(removals, [
      'refused: simulated service failure on removal attempt 1',
      'refused: simulated service failure on removal attempt 2',
      'ok',
    ]);
    assert.deepEqual(await sandbox.registeredAgents(), []);
  });

  void test('deregistration gives up when the drain time is over, and says so', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env, AZP_DRAIN_TIMEOUT: '2', FAKE_AGENT_REMOVE_FAILURES: '99' });
    await sandbox.listenerPid();
    run.child.kill('SIGTERM');
    const exit = await run.exited;

    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /^start\.sh: could not deregister agent 'agent-0' after \d+ attempts; remove it from pool 'private-aks' by hand$/m);
    assert.deepEqual(await sandbox.registeredAgents(), ['agent-0']);
  });

  void test('the fake listener cancels its job on SIGTERM, as the real one does (what the drain protects against)', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const run = sandbox.start({ ...baseEnv('persistent'), ...env });
    await sandbox.queueJob('job', 30);
    await sandbox.waitForEvent('job-started', 'job');
    process.kill(await sandbox.listenerPid(), 'SIGTERM');
    await sandbox.waitForEvent('job-cancelled', 'job');
    const exit = await run.exited;

    // start.sh sees its listener gone on its own and still deregisters.
    assert.equal(exit.code, 0, exit.stderr);
    assert.match(exit.stderr, /listener exited with status 0/);
    assert.equal(eventNames(await sandbox.events()).at(-1), 'removed agent-0');
  });
});

void describe('start.sh stops an ephemeral agent that gets no job (AZP_IDLE_TIMEOUT_SECONDS)', () => {
  void test('no job within the timeout: the listener stops and the agent deregisters', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    const startedAt = Date.now();
    const exit = await sandbox.start({ ...baseEnv('ephemeral'), ...env, AZP_IDLE_TIMEOUT_SECONDS: '1' }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(eventNames(await sandbox.events()), [
      'configured agent-0',
      'listener-started once=true',
      'listener-signal SIGTERM',
      'listener-stopped',
      'removed agent-0',
    ]);
    assert.ok(Date.now() - startedAt >= 1000, 'stopped before the timeout');
    assert.match(exit.stderr, /^start\.sh: no job within 1s: stopping the listener$/m);
    assert.deepEqual(await sandbox.registeredAgents(), []);
  });

  void test('a job that starts before the timeout runs to its end, however long it takes', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await credentials(sandbox, 'pat');
    await sandbox.queueJob('long-job', 2.5);
    const exit = await sandbox.start({ ...baseEnv('ephemeral'), ...env, AZP_IDLE_TIMEOUT_SECONDS: '1' }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    assert.deepEqual(eventNames(await sandbox.events()), [
      'configured agent-0',
      'listener-started once=true',
      'job-started long-job',
      'job-finished long-job',
      'listener-stopped',
      'removed agent-0',
    ]);
    assert.doesNotMatch(exit.stderr, /no job within/);
  });
});

void describe('start.sh validates its environment first', () => {
  const cases: { name: string; env: Record<string, string | undefined>; lines: string[] }[] = [
    { name: 'no AZP_URL', env: { AZP_URL: undefined }, lines: ['AZP_URL is required: the organization URL, e.g. https://dev.azure.com/contoso'] },
    { name: 'AZP_URL not a URL', env: { AZP_URL: 'dev.azure.com/contoso' }, lines: ["AZP_URL must be an http(s) URL, got 'dev.azure.com/contoso'"] },
    { name: 'unknown AZP_AUTH', env: { AZP_AUTH: 'password' }, lines: ["AZP_AUTH must be pat, sp or workload-identity, got 'password'"] },
    { name: 'unknown AZP_MODE', env: { AZP_MODE: 'forever' }, lines: ["AZP_MODE must be persistent, ephemeral, placeholder or cleanup, got 'forever'"] },
    { name: 'AZP_DRAIN_TIMEOUT with a unit', env: { AZP_DRAIN_TIMEOUT: '5m' }, lines: ["AZP_DRAIN_TIMEOUT must be a whole number of seconds, got '5m'"] },
    { name: 'AZP_IDLE_TIMEOUT_SECONDS with a unit', env: { AZP_MODE: 'ephemeral', AZP_IDLE_TIMEOUT_SECONDS: '10m' }, lines: ["AZP_IDLE_TIMEOUT_SECONDS must be a whole number of seconds, got '10m'"] },
    {
      name: 'an idle timeout for a persistent agent',
      env: { AZP_IDLE_TIMEOUT_SECONDS: '600' },
      lines: ['AZP_IDLE_TIMEOUT_SECONDS applies to AZP_MODE=ephemeral only; unset it for AZP_MODE=persistent'],
    },
    {
      name: 'AZP_CLEANUP_OFFLINE_MINUTES not a number',
      env: { AZP_MODE: 'cleanup', AZP_CLEANUP_OFFLINE_MINUTES: 'an hour' },
      lines: ["AZP_CLEANUP_OFFLINE_MINUTES must be a whole number of minutes, got 'an hour'"],
    },
    { name: 'pat without a token file', env: { AZP_TOKEN_FILE: undefined }, lines: ['AZP_TOKEN_FILE is required when AZP_AUTH=pat'] },
    { name: 'token file missing', env: { AZP_TOKEN_FILE: '/nonexistent/pat' }, lines: ['AZP_TOKEN_FILE (/nonexistent/pat) is not a readable file'] },
    {
      name: 'sp without its inputs',
      env: { AZP_AUTH: 'sp' },
      lines: ['AZP_CLIENT_ID is required when AZP_AUTH=sp', 'AZP_TENANT_ID is required when AZP_AUTH=sp', 'AZP_CLIENT_SECRET_FILE is required when AZP_AUTH=sp'],
    },
    {
      name: 'workload identity without the pod identity',
      env: { AZP_AUTH: 'workload-identity' },
      lines: [
        'AZP_CLIENT_ID or AZURE_CLIENT_ID must hold the identity\'s client ID when AZP_AUTH=workload-identity',
        'AZP_TENANT_ID or AZURE_TENANT_ID must hold the tenant ID when AZP_AUTH=workload-identity',
        'AZURE_FEDERATED_TOKEN_FILE is required when AZP_AUTH=workload-identity',
      ],
    },
    {
      name: 'workload identity with a plain-http authority',
      env: { AZP_AUTH: 'workload-identity', AZURE_CLIENT_ID: 'c', AZURE_TENANT_ID: 't', AZURE_FEDERATED_TOKEN_FILE: '/dev/null', AZURE_AUTHORITY_HOST: 'http://login.example' },
      lines: ["AZURE_AUTHORITY_HOST must be an https URL, got 'http://login.example'", 'AZURE_FEDERATED_TOKEN_FILE (/dev/null) is not a readable file'],
    },
    {
      name: 'no agent in AZP_AGENT_DIR',
      env: { AZP_AGENT_DIR: '/nonexistent/agent' },
      lines: ['AZP_AGENT_DIR (/nonexistent/agent) holds no executable config.sh and run.sh: point it at the unpacked agent'],
    },
    { name: 'missing CA file', env: { AZP_CA_CERT_FILE: '/nonexistent/ca.pem' }, lines: ['AZP_CA_CERT_FILE (/nonexistent/ca.pem) is not a readable file'] },
    {
      name: 'credentials in the proxy URL',
      env: { AZP_PROXY_URL: 'http://user:hunter2@proxy.corp:3128' },
      lines: ['AZP_PROXY_URL must be an http(s) URL without credentials, e.g. http://proxy.corp:3128'],
    },
  ];

  for (const { name, env, lines } of cases) {
    void test(`${name}: exits 2 with one line per problem and registers nothing`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const token = await sandbox.secretFile('pat', secretValue('pat'));
      const exit = await sandbox.start({ ...baseEnv('persistent'), AZP_AUTH: 'pat', AZP_TOKEN_FILE: token, ...env }).exited;

      assert.equal(exit.code, 2);
      assert.equal(exit.stdout, '');
      assert.deepEqual(exit.stderr.trimEnd().split('\n'), lines.map((line) => `start.sh: ${line}`));
      assert.deepEqual(await sandbox.configRecords(), []);
    });
  }

  void test('an empty token file is refused', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const empty = path.join(sandbox.root, 'empty-pat');
    await writeFile(empty, '', { mode: 0o600 });
    const exit = await sandbox.start({ ...baseEnv('persistent'), AZP_TOKEN_FILE: empty }).exited;

    assert.equal(exit.code, 2);
    assert.equal(exit.stderr, `start.sh: AZP_TOKEN_FILE (${empty}) is empty\n`);
  });
});

void test('every shell file of the agent image and the fake agent passes shellcheck', async () => {
  const fakeAgentFiles = (await readdir(fakeAgentSource, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
  const imageFiles = (await readdir(path.join(repoRoot, 'agent-image')))
    .filter((name) => name.endsWith('.sh'))
    .map((name) => path.join(repoRoot, 'agent-image', name));
  assert.ok(imageFiles.length >= 3 && fakeAgentFiles.length >= 5);
  // Fails (and prints every finding) on any warning or note; -x follows the fake agent's shared library.
  await promisify(execFile)('shellcheck', ['--external-sources', ...imageFiles, ...fakeAgentFiles]);
});
