// agent-image/start.sh against the stand-in of Azure DevOps' agent pool API (test/env/devopsAgents.ts)
// over TLS: AZP_MODE=cleanup removes exactly the agents offline past the threshold — with a PAT, a
// service principal or workload identity (no secret at all) — and the fake agent, registering
// over HTTP as the real one does, shows the capabilities an agent reports from its environment.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestCa, type TestCa } from '../env/ca.js';
import { DEVOPS_RESOURCE, startAgentPools, type AgentPoolsStandIn } from '../env/devopsAgents.js';
import { FEDERATED_TOKEN_AUDIENCE, startEntra, type EntraStandIn } from '../env/entra.js';
import { createJwtIssuer, type JwtIssuer } from '../env/jwt.js';
import { Sandbox, secretValue } from './harness.js';

const SERVICE_ACCOUNT = 'system:serviceaccount:azp:pool-azure-pipelines-agent';
const MINUTE = 60_000;

function ago(milliseconds: number): string {
  return new Date(Date.now() - milliseconds).toISOString();
}

/**
 * A pool as a few weeks of pods leave it: which agents cleanup must remove (offline past 60
 * minutes, counted from statusChangedOn, or from createdOn for one whose status never changed)
 * and which it must keep (online, offline briefly, a placeholder, running a job).
 */
function seedPool(pools: AgentPoolsStandIn, name: string): { removed: string[]; kept: string[] } {
  pools.addPool(name);
  const seed = (agentName: string, status: 'online' | 'offline', changedAgo?: number, extra: { createdOn?: string; busy?: boolean } = {}): void => {
    const agent = pools.addAgent(name, { name: agentName, status, createdOn: extra.createdOn ?? ago(30 * 24 * 60 * MINUTE), statusChangedOn: changedAgo === undefined ? undefined : ago(changedAgo) });
    if (extra.busy) agent.assignedRequestId = pools.queueJob(name, []).requestId;
  };
  seed('online-for-days', 'online', 5 * 24 * 60 * MINUTE);
  seed('offline-5h', 'offline', 5 * 60 * MINUTE);
  seed('offline-61m', 'offline', 61 * MINUTE);
  seed('offline-10m', 'offline', 10 * MINUTE);
  seed('never-online', 'offline', undefined, { createdOn: ago(2 * 60 * MINUTE) });
  seed('pool-web-placeholder', 'offline', 3 * 24 * 60 * MINUTE);
  seed('pool-web-builds-placeholder', 'offline', 3 * 24 * 60 * MINUTE);
  seed('offline-with-a-job', 'offline', 2 * 60 * MINUTE, { busy: true });
  return {
    removed: ['never-online', 'offline-5h', 'offline-61m'],
    kept: ['offline-10m', 'offline-with-a-job', 'online-for-days', 'pool-web-builds-placeholder', 'pool-web-placeholder'],
  };
}

void describe('start.sh against the Azure DevOps agent pool API', () => {
  let dir: string;
  let ca: TestCa;
  let entra: EntraStandIn;
  let pools: AgentPoolsStandIn;
  let clusterIssuer: JwtIssuer;
  const pat = secretValue('pat');
  const workloadClientId = randomUUID();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'agent-image-pool-api-'));
    ca = await createTestCa(dir);
    entra = await startEntra({ ca });
    pools = await startAgentPools({ ca, verifyEntraToken: (token) => entra.verifyAccessToken(token) });
    pools.addPersonalAccessToken(pat);
    clusterIssuer = await createJwtIssuer('https://oidc.aks.example/11111111-1111-1111-1111-111111111111/');
    entra.addFederatedClient(workloadClientId, { issuer: clusterIssuer.issuer, subject: SERVICE_ACCOUNT, publicJwk: clusterIssuer.publicJwk });
  });
  after(async () => {
    await pools?.stop();
    await entra?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function cleanupEnv(pool: string): Record<string, string> {
    return {
      AZP_URL: pools.organizationUrl,
      AZP_POOL: pool,
      AZP_MODE: 'cleanup',
      AZP_CA_CERT_FILE: ca.caCertPath,
      // Spaces and case as a user might write them: names compare as Azure DevOps compares them.
      AZP_PLACEHOLDER_AGENTS: 'pool-web-placeholder, Pool-Web-Builds-Placeholder',
    };
  }

  /** The requests cleanup made for `pool`, and the agent names left in it. */
  function outcome(pool: string, requestsBefore: number): { deleted: string[]; auth: Set<string>; left: string[] } {
    const poolId = pools.agents(pool)[0]?.poolId;
    const requests = pools.requests.slice(requestsBefore);
    return {
      deleted: requests.filter((request) => request.method === 'DELETE' && request.status === 204).map((request) => request.path),
      auth: new Set(requests.map((request) => request.auth)),
      left: pools.agents(pool).filter((agent) => agent.poolId === poolId).map((agent) => agent.name).sort(),
    };
  }

  void test('with a PAT: removes exactly the agents offline past 60 minutes, logging each, and keeps the rest', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const expected = seedPool(pools, 'cleanup-pat');
    const idsBefore = new Map(pools.agents('cleanup-pat').map((agent) => [agent.name, agent.id]));
    const requestsBefore = pools.requests.length;
    const exit = await sandbox.start({ ...cleanupEnv('cleanup-pat'), AZP_AUTH: 'pat', AZP_TOKEN_FILE: await sandbox.secretFile('pat', pat) }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    const { deleted, auth, left } = outcome('cleanup-pat', requestsBefore);
    assert.deepEqual(left, expected.kept);
    assert.deepEqual(deleted.sort(), expected.removed.map((name) => `/contoso/_apis/distributedtask/pools/${pools.agents('cleanup-pat')[0]?.poolId}/agents/${idsBefore.get(name)}`).sort());
    assert.deepEqual([...auth], ['pat']);
    for (const name of expected.removed) {
      assert.match(exit.stderr, new RegExp(`^start\\.sh: cleanup: removed agent '${name}' \\(id ${idsBefore.get(name)}\\), offline since \\d{4}-\\d\\d-\\d\\dT`, 'm'));
    }
    assert.match(exit.stderr, /^start\.sh: cleanup: 3 agents removed$/m);
    assert.ok(!exit.stderr.includes(pat), 'the PAT is in the log');
    // Nothing was registered: cleanup runs no agent.
    assert.deepEqual(await sandbox.configRecords(), []);
  });

  void test('AZP_CLEANUP_OFFLINE_MINUTES moves the threshold', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    seedPool(pools, 'cleanup-threshold');
    const requestsBefore = pools.requests.length;
    const exit = await sandbox.start({ ...cleanupEnv('cleanup-threshold'), AZP_CLEANUP_OFFLINE_MINUTES: '180', AZP_AUTH: 'pat', AZP_TOKEN_FILE: await sandbox.secretFile('pat', pat) }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    const { left, deleted } = outcome('cleanup-threshold', requestsBefore);
    assert.equal(deleted.length, 1);
    assert.ok(!left.includes('offline-5h') && left.includes('offline-61m') && left.includes('never-online'), left.join(', '));
  });

  void test('with a service principal: a bearer token from Entra (client secret), never the secret itself', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const clientId = randomUUID();
    // Characters a form must encode: the secret reaches Entra intact or not at all.
    const clientSecret = `${secretValue('sp')}+/=&%`;
    entra.addSecretClient(clientId, clientSecret);
    const expected = seedPool(pools, 'cleanup-sp');
    const requestsBefore = pools.requests.length;
    const entraBefore = entra.tokenRequests.length;
    const exit = await sandbox.start({
      ...cleanupEnv('cleanup-sp'),
      AZP_AUTH: 'sp',
      AZP_CLIENT_ID: clientId,
      AZP_TENANT_ID: entra.tenantId,
      AZP_CLIENT_SECRET_FILE: await sandbox.secretFile('client-secret', clientSecret),
      AZURE_AUTHORITY_HOST: entra.authorityUrl,
    }).exited;

    assert.equal(exit.code, 0, exit.stderr);
    const { left, auth } = outcome('cleanup-sp', requestsBefore);
    assert.deepEqual(left, expected.kept);
    assert.deepEqual([...auth], ['entra']);
    const tokenRequests = entra.tokenRequests.slice(entraBefore);
    assert.deepEqual(tokenRequests.map((request) => [request.status, request.credentialType, request.scope]), [[200, 'secret', `${DEVOPS_RESOURCE}/.default`]]);
    assert.ok(!exit.stderr.includes(clientSecret));
  });

  void test('with workload identity: the pod token is exchanged at Entra, and no secret exists anywhere', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const expected = seedPool(pools, 'cleanup-wi');
    const requestsBefore = pools.requests.length;
    const entraBefore = entra.tokenRequests.length;
    const env = {
      ...cleanupEnv('cleanup-wi'),
      AZP_AUTH: 'workload-identity',
      AZURE_CLIENT_ID: workloadClientId,
      AZURE_TENANT_ID: entra.tenantId,
      AZURE_AUTHORITY_HOST: entra.authorityUrl,
      AZURE_FEDERATED_TOKEN_FILE: await sandbox.secretFile('azure-identity-token', clusterIssuer.sign({ sub: SERVICE_ACCOUNT, aud: FEDERATED_TOKEN_AUDIENCE })),
    };
    assert.ok(!Object.keys(env).some((name) => /TOKEN_FILE$|SECRET/.test(name) && name !== 'AZURE_FEDERATED_TOKEN_FILE'));
    const exit = await sandbox.start(env).exited;

    assert.equal(exit.code, 0, exit.stderr);
    const { left, auth } = outcome('cleanup-wi', requestsBefore);
    assert.deepEqual(left, expected.kept);
    assert.deepEqual([...auth], ['entra']);
    assert.deepEqual(entra.tokenRequests.slice(entraBefore).map((request) => request.credentialType), ['federated']);
  });

  void test('a PAT Azure DevOps refuses: one line naming the status and the reason, nothing removed', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    seedPool(pools, 'cleanup-refused');
    const before = pools.agents('cleanup-refused').length;
    const exit = await sandbox.start({ ...cleanupEnv('cleanup-refused'), AZP_AUTH: 'pat', AZP_TOKEN_FILE: await sandbox.secretFile('pat', 'not-a-known-pat') }).exited;

    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /^start\.sh: cleanup: GET https:\/\/127\.0\.0\.1:\d+\/contoso\/_apis\/distributedtask\/pools answered 401: TF400813: The user is not authorized to access this resource\.$/m);
    assert.equal(pools.agents('cleanup-refused').length, before);
  });

  void test('a pool that does not exist: one line naming AZP_POOL', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    const exit = await sandbox.start({ ...cleanupEnv('no-such-pool'), AZP_AUTH: 'pat', AZP_TOKEN_FILE: await sandbox.secretFile('pat', pat) }).exited;

    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /^start\.sh: cleanup: agent pool 'no-such-pool' does not exist at https:\/\/127\.0\.0\.1:\d+\/contoso \(or this identity may not see it\): check AZP_POOL$/m);
  });

  void test('a placeholder registers over the REST API with its environment as capabilities, and credential names hidden', async (t) => {
    const sandbox = await Sandbox.create();
    t.after(() => sandbox.dispose());
    pools.addPool('registration');
    const env = {
      AZP_URL: pools.organizationUrl,
      AZP_POOL: 'registration',
      AZP_AGENT_NAME: 'pool-builds-placeholder',
      AZP_CA_CERT_FILE: ca.caCertPath,
      AZP_AUTH: 'pat',
      AZP_TOKEN_FILE: await sandbox.secretFile('pat', pat),
      FAKE_AZDO_HTTP: 'true',
      // A profile's capabilities: plain environment variables, dots allowed.
      'agent.builder': 'buildkit',
      AGENT_SIZE: 'large',
    };
    const first = await sandbox.start({ ...env, AZP_MODE: 'placeholder' }).exited;
    assert.equal(first.code, 0, first.stderr);
    const [placeholder] = pools.agents('registration');
    assert.equal(placeholder?.name, 'pool-builds-placeholder');
    assert.equal(placeholder.status, 'offline');
    assert.equal(placeholder.systemCapabilities['agent.builder'], 'buildkit');
    assert.equal(placeholder.systemCapabilities.AGENT_SIZE, 'large');
    assert.equal(placeholder.systemCapabilities['Agent.Name'], 'pool-builds-placeholder');
    // The environment is reported, except what VSO_AGENT_IGNORE names (start.sh sets it before config.sh).
    assert.equal(placeholder.systemCapabilities.AZP_POOL, 'registration');
    assert.ok(!('AZP_TOKEN_FILE' in placeholder.systemCapabilities), 'the credential file is a capability');
    assert.ok(pools.requests.filter((request) => request.method === 'POST').every((request) => request.auth === 'pat'));

    // An upgrade registers the placeholder again from a new pod (config.sh --replace): same agent, new capabilities.
    const nextPod = await Sandbox.create();
    t.after(() => nextPod.dispose());
    const again = await nextPod.start({ ...env, AZP_TOKEN_FILE: await nextPod.secretFile('pat', pat), AGENT_SIZE: 'xl', AZP_MODE: 'placeholder' }).exited;
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(pools.agents('registration').map((agent) => [agent.id, agent.systemCapabilities.AGENT_SIZE]), [[placeholder.id, 'xl']]);
    // A job demanding the capability queues against the placeholder; one it lacks fails at once.
    assert.deepEqual(pools.matchedAgents(pools.queueJob('registration', ['agent.builder -equals BuildKit'])).map((agent) => agent.name), ['pool-builds-placeholder']);
    assert.equal(pools.queueJob('registration', ['gpu']).result, 'failed');
  });
});
