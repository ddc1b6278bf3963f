import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgentPools } from '../test/env/devopsAgents.js';
import { CHART_DIR, Helm } from '../test/agent-pool/chart.js';
import { installKedaCrds, startKedaOperator } from '../test/agent-pool/keda.js';
import { registerPlaceholders } from '../test/agent-pool/placeholders.js';
import { startControlPlane } from '../test/kube/controlPlane.js';
import { startFakeKubelet } from '../test/kube/fakeKubelet.js';
import type { TaskRun } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

const NAMESPACE = 'azp';
const POOL = 'aks-ephemeral';

/**
 * The agent pool chart, installed with two profiles into an embedded API server whose namespace
 * enforces Pod Security `restricted`: the objects it creates, each profile's placeholder agent
 * registering with its capabilities in a stand-in of Azure DevOps' agent pool API, and the real
 * KEDA operator starting one agent of the `builds` profile for a job that demands it.
 */
export const agentPoolStep: DemoStep = {
  title: 'Agent pool chart — two profiles scaled by KEDA in a restricted namespace',
  async run({ env, work }) {
    const lines: string[] = [];
    const say = (text: string): void => {
      for (const line of text.trimEnd().split('\n')) lines.push(line);
    };
    const dir = join(work, 'agent-pool');
    await mkdir(dir);
    const cluster = await startControlPlane({ dir: join(dir, 'cluster'), ca: env.ca });
    const pools = await startAgentPools({ ca: env.ca });
    const helm = await Helm.create(cluster.adminKubeconfigPath);
    const cleanups: (() => Promise<void>)[] = [() => helm.close(), () => pools.stop(), () => cluster.stop()];
    try {
      const crdDir = await installKedaCrds(cluster);
      pools.addPool(POOL);
      const pat = randomBytes(26).toString('base64url');
      pools.addPersonalAccessToken(pat);
      await cluster.createNamespace(NAMESPACE, { podSecurity: 'restricted' });
      await cluster.admin.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'azp-pat' }, stringData: { pat } });
      // Agent pods stay Pending (no container runtime here); the placeholder hooks complete.
      const kubelet = await startFakeKubelet(cluster, { namespaces: [NAMESPACE], decide: (pod) => (pod.metadata.labels?.['scaledjob.keda.sh/name'] ? 'pending' : 'ready') });
      cleanups.unshift(() => kubelet.stop());

      const values = await helm.valuesFile({
        mode: 'scaledJob',
        azp: { url: pools.organizationUrl, pool: POOL },
        image: { repository: 'contoso.azurecr.io/azure-pipelines-agent' },
        auth: { existingSecret: 'azp-pat' },
        deployTargets: [NAMESPACE],
        caBundle: { pem: env.ca.caCertPem },
        networkPolicy: { apiServer: { cidrs: ['10.224.0.4/32'] }, azureDevOps: { cidrs: ['13.107.6.0/24', '13.107.9.0/24', '13.107.42.0/24', '13.107.43.0/24'] } },
        scaledJob: { pollingInterval: 2 },
        cleanup: { enabled: true },
        profiles: [
          { name: 'default', maxReplicas: 5 },
          { name: 'builds', capabilities: { 'agent.profile': 'builds' }, demands: ['agent.profile -equals builds'], maxReplicas: 2, resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { memory: '8Gi' } } },
        ],
      });
      say('$ helm install agents helm/azure-pipelines-agent -n azp   (mode scaledJob, profiles default and builds)');
      await helm.run(['install', 'agents', CHART_DIR, `--namespace=${NAMESPACE}`, `--values=${values}`, '--wait', '--timeout=120s'], 180_000);
      say(await cluster.kubectl(['get', 'scaledjobs,triggerauthentications,cronjobs,networkpolicies,serviceaccounts,roles,rolebindings', `--namespace=${NAMESPACE}`, '--selector=app.kubernetes.io/instance=agents']));

      const placeholders = await registerPlaceholders(await helm.render([values], { release: 'agents', namespace: NAMESPACE }), { pat, caCertPath: env.ca.caCertPath });
      say(`\nThe placeholder hooks' registrations in the pool "${POOL}" (offline on purpose: jobs queue against them):`);
      for (const agent of pools.agents(POOL)) {
        say(`  ${agent.name}  ${agent.status}  agent.profile=${agent.systemCapabilities['agent.profile'] ?? '(none)'}`);
      }

      const keda = await startKedaOperator(cluster, { dir, ca: env.ca, crdDir });
      cleanups.unshift(() => keda.stop());
      const job = pools.queueJob(POOL, ['agent.profile -equals builds', 'Agent.Version -gtVersion 3.232.1'], 'web-build');
      say(`\nQueued job ${job.requestId} demanding agent.profile -equals builds; the KEDA operator reads the queue…`);
      const deadline = Date.now() + 60_000;
      let jobs = '';
      while (!jobs.includes('agents-azure-pipelines-agent-builds-') && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        jobs = await cluster.kubectl(['get', 'jobs', `--namespace=${NAMESPACE}`, '--selector=scaledjob.keda.sh/name', '--output=custom-columns=JOB:.metadata.name,SCALEDJOB:.metadata.labels.scaledjob\\.keda\\.sh/name']);
      }
      say(jobs || 'no Job yet');
      const started = jobs.includes('agents-azure-pipelines-agent-builds-');
      return {
        exitCode: started ? 0 : 1,
        result: started ? 'Succeeded' : 'Failed',
        message: started ? undefined : 'KEDA started no agent for the queued job within 60 s',
        errors: [],
        warnings: [],
        outputs: { placeholders: placeholders.join(',') },
        summaries: [],
        maskedOutput: lines.join('\n'),
        registeredSecrets: [],
        tempFilesLeft: [], testResults: [],
      } satisfies TaskRun;
    } finally {
      for (const cleanup of cleanups) await cleanup();
    }
  },
};
