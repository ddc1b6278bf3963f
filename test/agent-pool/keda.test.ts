// The agent pool chart's profiles scaled by the real KEDA operator (v2.20.2, from its Go module),
// out of cluster against the real API server, reading the stand-in of Azure DevOps' agent pool API
// (test/env/devopsAgents.ts), which answers as KEDA's azure-pipelines scaler reads it. Each
// profile's placeholder registers by running agent-image/start.sh with the environment the chart
// renders for it; the fake kubelet keeps agent pods Pending (an image still pulling) until the test
// lets a pod start and take its job, as an agent would.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestCa, type TestCa } from '../env/ca.js';
import { startAgentPools, type AgentPoolsStandIn, type JobRequestRecord } from '../env/devopsAgents.js';
import { secretValue } from '../agent-image/harness.js';
import { startControlPlane, type ControlPlane } from '../kube/controlPlane.js';
import { startFakeKubelet, type FakeKubelet } from '../kube/fakeKubelet.js';
import { CHART_DIR, findObject, Helm, type KubeObject } from './chart.js';
import { installKedaCrds, kedaVersion, startKedaOperator, type KedaOperator } from './keda.js';
import { registerPlaceholders } from './placeholders.js';

const NAMESPACE = 'agents';
const POOL = 'aks-ephemeral';
const RELEASE = 'pool';
const SCALED_JOBS = { default: 'pool-azure-pipelines-agent', builds: 'pool-azure-pipelines-agent-builds', deploys: 'pool-azure-pipelines-agent-deploys' } as const;
type Profile = keyof typeof SCALED_JOBS;

/** KEDA's label on the Jobs a ScaledJob creates. */
const SCALED_JOB_LABEL = 'scaledjob.keda.sh/name';

/** A demand real job requests carry (tasks' minimum agent version); KEDA drops it before matching. */
const AGENT_VERSION_DEMAND = 'Agent.Version -gtVersion 3.232.1';

interface JobList {
  items: { metadata: { name: string; labels: Record<string, string> } }[];
}

void describe('agent pool profiles scaled by the real KEDA operator', () => {
  let dir: string;
  let ca: TestCa;
  let cluster: ControlPlane;
  let kubelet: FakeKubelet;
  let helm: Helm;
  let pools: AgentPoolsStandIn;
  let keda: KedaOperator;
  let rendered: KubeObject[];
  const pat = secretValue('pat');

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'agent-pool-keda-'));
    ca = await createTestCa(path.join(dir, 'ca'));
    cluster = await startControlPlane({ dir: path.join(dir, 'cluster'), ca });
    const crdDir = await installKedaCrds(cluster);
    pools = await startAgentPools({ ca });
    pools.addPool(POOL);
    pools.addPersonalAccessToken(pat);

    await cluster.createNamespace(NAMESPACE, { podSecurity: 'restricted' });
    await cluster.admin.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'azp-pat' }, stringData: { pat } });
    // Agent pods wait as if their image were pulling; the placeholder hooks run to completion.
    kubelet = await startFakeKubelet(cluster, { namespaces: [NAMESPACE], decide: (pod) => (pod.metadata.labels?.[SCALED_JOB_LABEL] ? 'pending' : 'ready') });

    helm = await Helm.create(cluster.adminKubeconfigPath);
    const values = await helm.valuesFile({
      mode: 'scaledJob',
      azp: { url: pools.organizationUrl, pool: POOL },
      image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
      auth: { existingSecret: 'azp-pat' },
      deployTargets: [NAMESPACE],
      caBundle: { pem: ca.caCertPem },
      networkPolicy: { enabled: false },
      scaledJob: { pollingInterval: 1 },
      profiles: [
        { name: 'default', maxReplicas: 5 },
        { name: 'builds', capabilities: { 'agent.profile': 'builds' }, demands: ['agent.profile -equals builds'], maxReplicas: 3 },
        { name: 'deploys', capabilities: { 'agent.profile': 'deploys', 'deploy.target': 'prod' }, demands: ['agent.profile -equals deploys', 'deploy.target -equals prod'], maxReplicas: 2 },
      ],
    });
    rendered = await helm.render([values], { release: RELEASE, namespace: NAMESPACE });
    await helm.run(['install', RELEASE, CHART_DIR, `--namespace=${NAMESPACE}`, `--values=${values}`, '--wait', '--timeout=120s'], 180_000);
    await registerPlaceholders(rendered, { pat, caCertPath: ca.caCertPath });
    keda = await startKedaOperator(cluster, { dir, ca, crdDir });
  });

  after(async () => {
    await keda?.stop();
    await kubelet?.stop();
    await cluster?.stop();
    await pools?.stop();
    await helm?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Jobs KEDA created, counted per profile. */
  async function jobsPerProfile(): Promise<Record<Profile, number>> {
    const jobs = JSON.parse(await cluster.kubectl(['get', 'jobs', `--namespace=${NAMESPACE}`, `--selector=${SCALED_JOB_LABEL}`, '--output=json'])) as JobList;
    const counts: Record<Profile, number> = { default: 0, builds: 0, deploys: 0 };
    for (const job of jobs.items) {
      const profile = (Object.keys(SCALED_JOBS) as Profile[]).find((name) => SCALED_JOBS[name] === job.metadata.labels[SCALED_JOB_LABEL]);
      assert.ok(profile, `a Job of an unknown ScaledJob: ${job.metadata.name}`);
      counts[profile] += 1;
    }
    return counts;
  }

  /** Waits until every ScaledJob has read the queue `rounds` more times (one request each per polling interval). */
  async function waitForPolls(rounds: number): Promise<void> {
    const polls = (): number => pools.requests.filter((request) => request.path.endsWith('/jobrequests') && request.status === 200).length;
    const target = polls() + rounds * Object.keys(SCALED_JOBS).length;
    const deadline = Date.now() + 60_000;
    while (polls() < target) {
      if (Date.now() > deadline) throw new Error(`KEDA stopped reading the queue (${polls()} of ${target} reads); its log ends with:\n${await keda.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Waits for KEDA to reach `expected` Jobs, then holds it there for three more polls (no extra Jobs follow). */
  async function expectJobs(expected: Record<Profile, number>): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (JSON.stringify(await jobsPerProfile()) !== JSON.stringify(expected)) {
      if (Date.now() > deadline) {
        assert.deepEqual(await jobsPerProfile(), expected, `KEDA's Jobs per profile; its log ends with:\n${await keda.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await waitForPolls(3);
    assert.deepEqual(await jobsPerProfile(), expected, 'KEDA kept scaling after it had started the agents the queue asked for');
  }

  /**
   * The newest pending Job of a profile starts: its pod runs, its agent registers and Azure DevOps
   * hands it the job request, which KEDA then no longer counts.
   */
  async function agentTakes(profile: Profile, request: JobRequestRecord): Promise<void> {
    const pods = JSON.parse(await cluster.kubectl(['get', 'pods', `--namespace=${NAMESPACE}`, `--selector=${SCALED_JOB_LABEL}=${SCALED_JOBS[profile]}`, '--output=json'])) as { items: { metadata: { name: string }; status: { phase: string } }[] };
    const pod = pods.items.find((candidate) => candidate.status.phase === 'Pending') ?? assert.fail(`no pending ${profile} pod`);
    await cluster.admin.request('PATCH', `/api/v1/namespaces/${NAMESPACE}/pods/${pod.metadata.name}/status`, { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, { contentType: 'application/merge-patch+json' });
    const placeholder = pools.agents(POOL).find((agent) => agent.name === `${SCALED_JOBS[profile]}-placeholder`) ?? assert.fail('no placeholder');
    pools.addAgent(POOL, { name: pod.metadata.name, status: 'online', systemCapabilities: { ...placeholder.systemCapabilities, 'Agent.Name': pod.metadata.name } });
    pools.receiveJob(request.requestId, pod.metadata.name);
  }

  void it('registers each profile\'s placeholder with the profile\'s capabilities, offline', () => {
    const placeholders = pools.agents(POOL);
    assert.deepEqual(placeholders.map((agent) => agent.name).sort(), Object.values(SCALED_JOBS).map((name) => `${name}-placeholder`).sort());
    for (const [profile, objectName] of Object.entries(SCALED_JOBS)) {
      const agent = placeholders.find((candidate) => candidate.name === `${objectName}-placeholder`) ?? assert.fail(profile);
      assert.equal(agent.status, 'offline', profile);
      assert.equal(agent.systemCapabilities['agent.profile'], profile === 'default' ? undefined : profile, profile);
      assert.equal(agent.systemCapabilities['deploy.target'], profile === 'deploys' ? 'prod' : undefined, profile);
      assert.equal(agent.systemCapabilities.AZP_TOKEN_FILE, undefined, `${profile}: a credential source became a capability`);
    }
  });

  void it('runs the KEDA version whose rule picked the scaling strategy, and KEDA accepts every trigger', async () => {
    // The chart's keda.version defaults to the operator under test, whose trigger counts only jobs
    // no agent has received (2.20+): the chart must pick `accurate` for it.
    assert.equal(`v${(await helm.run(['show', 'values', CHART_DIR])).match(/^ {2}version: "([^"]+)"$/m)?.[1]}`, await kedaVersion());
    for (const name of Object.values(SCALED_JOBS)) {
      assert.equal((findObject(rendered, 'ScaledJob', (object) => object.metadata.name === name).spec as { scalingStrategy: { strategy: string } }).scalingStrategy.strategy, 'accurate');
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      const list = JSON.parse(await cluster.kubectl(['get', 'scaledjobs', `--namespace=${NAMESPACE}`, '--output=json'])) as { items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string; message?: string }[] } }[] };
      const ready = list.items.map((item) => [item.metadata.name, item.status?.conditions?.find((condition) => condition.type === 'Ready')?.status]);
      if (ready.length === 3 && ready.every(([, status]) => status === 'True')) break;
      if (Date.now() > deadline) assert.fail(`ScaledJobs not Ready: ${JSON.stringify(list.items.map((item) => [item.metadata.name, item.status?.conditions]))}\n${await keda.logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });

  void it('starts no agent while the queue is empty', async () => {
    await waitForPolls(3);
    assert.deepEqual(await jobsPerProfile(), { default: 0, builds: 0, deploys: 0 });
  });

  void it('starts exactly one agent of the profile whose demands a job has, and none of the others', async () => {
    const build = pools.queueJob(POOL, ['agent.profile -equals builds', AGENT_VERSION_DEMAND], 'build');
    assert.equal(build.result, null, 'Azure DevOps queued the job against the builds placeholder');
    await expectJobs({ default: 0, builds: 1, deploys: 0 });

    // Demands compare without regard to order or case, as Azure DevOps compares capabilities.
    const deploy = pools.queueJob(POOL, ['Deploy.Target -equals PROD', 'agent.profile -equals deploys'], 'deploy');
    await expectJobs({ default: 0, builds: 1, deploys: 1 });

    await agentTakes('builds', build);
    await agentTakes('deploys', deploy);
    await expectJobs({ default: 0, builds: 1, deploys: 1 });
  });

  void it('sends a job without demands to the default profile only, though every placeholder matches it', async () => {
    const job = pools.queueJob(POOL, [AGENT_VERSION_DEMAND], 'lint');
    // What makes `parent` unusable for the other profiles: Azure DevOps lists every placeholder.
    assert.deepEqual(pools.matchedAgents(job).map((agent) => agent.name).filter((name) => name.endsWith('-placeholder')).length, 3);
    await expectJobs({ default: 1, builds: 1, deploys: 1 });
    await agentTakes('default', job);
    await expectJobs({ default: 1, builds: 1, deploys: 1 });
  });

  void it('with KEDA 2.20 counting only jobs no agent received, `accurate` starts an agent beside a busy one; `default` would not', async () => {
    // The builds agent is busy with its job; a second build queues.
    const second = pools.queueJob(POOL, ['agent.profile -equals builds'], 'build');
    await expectJobs({ default: 1, builds: 2, deploys: 1 });
    await agentTakes('builds', second);

    // The strategy KEDA before 2.20 needed subtracts running agents from the queue: with two busy
    // agents, a third build would wait for one of them.
    const patch = (strategy: string): Promise<string> => cluster.kubectl(['patch', 'scaledjob', SCALED_JOBS.builds, `--namespace=${NAMESPACE}`, '--type=merge', `--patch=${JSON.stringify({ spec: { scalingStrategy: { strategy } } })}`]);
    await patch('default');
    pools.queueJob(POOL, ['agent.profile -equals builds'], 'build');
    await waitForPolls(4);
    assert.deepEqual(await jobsPerProfile(), { default: 1, builds: 2, deploys: 1 }, '`default` started an agent for the third build');
    await patch('accurate');
    await expectJobs({ default: 1, builds: 3, deploys: 1 });
  });

  void it('starts nothing for a job no profile has exactly the demands of', async () => {
    // Both profiles' capabilities are needed: no agent has them, and Azure DevOps fails the job at once.
    const impossible = pools.queueJob(POOL, ['agent.profile -equals builds', 'deploy.target -equals prod']);
    assert.equal(impossible.result, 'failed');
    // A demand set only a placeholder can satisfy but no trigger names exactly: queued, and no
    // profile scales for it (the chart's README says so).
    const unmatched = pools.queueJob(POOL, ['agent.profile -equals deploys']);
    assert.equal(unmatched.result, null);
    await waitForPolls(3);
    assert.deepEqual(await jobsPerProfile(), { default: 1, builds: 3, deploys: 1 });
  });
});
