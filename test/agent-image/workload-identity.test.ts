// agent-image/start.sh with AZP_AUTH=workload-identity against the Entra stand-in: the pod's
// projected service-account token is exchanged for an Azure DevOps token over TLS (the test CA
// given as AZP_CA_CERT_FILE), and that token registers and deregisters the agent — no PAT anywhere.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestCa, type TestCa } from '../env/ca.js';
import { FEDERATED_TOKEN_AUDIENCE, startEntra, type EntraStandIn } from '../env/entra.js';
import { createJwtIssuer, type JwtIssuer } from '../env/jwt.js';
import { Sandbox, assertListenerEnvironment, eventNames, sha256, type ConfigRecord } from './harness.js';

const DEVOPS_RESOURCE = '499b84ac-1321-427f-aa17-267ca6975798';
const SERVICE_ACCOUNT = 'system:serviceaccount:azure-pipelines:agent';

void describe('start.sh with workload identity', () => {
  let dir: string;
  let ca: TestCa;
  let entra: EntraStandIn;
  let clusterIssuer: JwtIssuer;
  const clientId = randomUUID();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'agent-image-entra-'));
    ca = await createTestCa(dir);
    entra = await startEntra({ ca });
    // The AKS OIDC issuer that signs the pod's projected token, trusted by a federated credential.
    clusterIssuer = await createJwtIssuer('https://oidc.aks.example/00000000-0000-0000-0000-000000000000/');
    entra.addFederatedClient(clientId, { issuer: clusterIssuer.issuer, subject: SERVICE_ACCOUNT, publicJwk: clusterIssuer.publicJwk });
  });
  after(async () => {
    await entra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** The env AKS workload identity injects, with the projected token written as kubelet would. */
  async function podIdentity(sandbox: Sandbox, subject = SERVICE_ACCOUNT): Promise<{ assertion: string; env: Record<string, string> }> {
    const assertion = clusterIssuer.sign({ sub: subject, aud: FEDERATED_TOKEN_AUDIENCE });
    return {
      assertion,
      env: {
        AZP_URL: 'https://dev.azure.com/contoso',
        AZP_POOL: 'private-aks',
        AZP_AGENT_NAME: 'agent-0',
        AZP_AUTH: 'workload-identity',
        AZP_CA_CERT_FILE: ca.caCertPath,
        AZURE_CLIENT_ID: clientId,
        AZURE_TENANT_ID: entra.tenantId,
        AZURE_AUTHORITY_HOST: entra.authorityUrl,
        AZURE_FEDERATED_TOKEN_FILE: await sandbox.secretFile('azure-identity-token', assertion),
      },
    };
  }

  /** Each config.sh call used a token Entra issued for Azure DevOps, each one fresh; returns those tokens. */
  function assertEntraTokens(records: ConfigRecord[], requestsBefore: number): string[] {
    const requests = entra.tokenRequests.slice(requestsBefore);
    assert.equal(requests.length, records.length);
    for (const request of requests) {
      assert.equal(request.status, 200, request.error);
      assert.equal(request.grantType, 'client_credentials');
      assert.equal(request.credentialType, 'federated');
      assert.equal(request.clientId, clientId);
      assert.equal(request.scope, `${DEVOPS_RESOURCE}/.default`);
    }
    const tokens = records.map((record) => {
      assert.equal(record.auth, 'PAT');
      assert.deepEqual(record.secretsOnCommandLine, []);
      assert.deepEqual(record.envInputs, ['token']);
      const issued = entra.issuedTokens.find((candidate) => sha256(candidate.token) === record.tokenSha256);
      assert.ok(issued, `${record.command} used a token Entra did not issue`);
      assert.equal(issued.claims.aud, DEVOPS_RESOURCE);
      return issued.token;
    });
    assert.equal(new Set(tokens).size, tokens.length, 'deregistration must fetch a fresh token');
    return tokens;
  }

  for (const mode of ['persistent', 'ephemeral', 'placeholder'] as const) {
    void test(`${mode}: registers with an Entra token for Azure DevOps, and no secret leaks`, async (t) => {
      const sandbox = await Sandbox.create();
      t.after(() => sandbox.dispose());
      const { assertion, env } = await podIdentity(sandbox);
      const requestsBefore = entra.tokenRequests.length;
      const run = sandbox.start({ ...env, AZP_MODE: mode });

      if (mode !== 'placeholder') {
        await sandbox.waitForEvent('configured', 'agent-0');
        const [registrationToken] = entra.issuedTokens.slice(-1).map((issued) => issued.token);
        await assertListenerEnvironment(sandbox, assertion, registrationToken);
        await sandbox.queueJob('job', 0.2);
        await sandbox.waitForEvent('job-finished', 'job');
        if (mode === 'persistent') run.child.kill('SIGTERM');
      }
      const exit = await run.exited;

      assert.equal(exit.code, 0, exit.stderr);
      const records = await sandbox.configRecords();
      assert.deepEqual(
        records.map((r) => `${r.command} ${r.result}`),
        mode === 'placeholder' ? ['configure ok'] : ['configure ok', 'remove ok'],
      );
      const tokens = assertEntraTokens(records, requestsBefore);
      const everythingLogged = (await sandbox.allLogText()) + exit.stdout + exit.stderr;
      for (const secret of [assertion, ...tokens]) assert.ok(!everythingLogged.includes(secret), 'a secret is in a log or a job environment');
      assert.deepEqual(await sandbox.registeredAgents(), mode === 'placeholder' ? ['agent-0'] : []);
      if (mode !== 'placeholder') assert.equal(eventNames(await sandbox.events()).at(-1), 'removed agent-0');
    });
  }

  void test('AZP_CLIENT_ID and AZP_TENANT_ID take precedence over the injected AZURE_* values', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await podIdentity(sandbox);
    const requestsBefore = entra.tokenRequests.length;
    const exit = await sandbox.start({
      ...env, AZP_MODE: 'placeholder', AZP_CLIENT_ID: clientId, AZP_TENANT_ID: entra.tenantId,
      AZURE_CLIENT_ID: 'someone-else', AZURE_TENANT_ID: 'another-tenant',
    }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    assertEntraTokens(await sandbox.configRecords(), requestsBefore);
  });

  void test('a token Entra refuses: one line with its error, exit 1, nothing registered', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const { env } = await podIdentity(sandbox, 'system:serviceaccount:other:intruder');
    const exit = await sandbox.start({ ...env, AZP_MODE: 'persistent' }).exited;

    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /^start\.sh: workload identity: Entra answered 400: invalid_request: AADSTS70021: No matching federated identity record found for presented assertion\.[^\n]*\nstart\.sh: registration failed\n$/m);
    assert.deepEqual(await sandbox.configRecords(), []);
    assert.deepEqual(await sandbox.registeredAgents(), []);
  });
});
