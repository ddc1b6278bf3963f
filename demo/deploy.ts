import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { testToolPath } from '../test/env/environment.js';
import { kubeToolPath, startControlPlane } from '../test/kube/controlPlane.js';
import { startFakeKubelet } from '../test/kube/fakeKubelet.js';
import { runTask } from '../test/support/taskRunner.js';
import type { DemoStep } from './run.js';

const SAMPLE_CHART = join(import.meta.dirname, '..', 'test', 'fixtures', 'charts', 'web');

/**
 * PrivateAksDeploy@1 with the agent's service account: an embedded API server (etcd, kube-apiserver,
 * controllers; a fake kubelet starts the pods), a kubeconfig holding a token of the agent's service
 * account (the demo runs outside a pod, so `inCluster` has no mounted token to read), and the chart
 * the chart step pushed — pulled from the registry with Entra auth — or the sample chart folder.
 */
export const deployStep: DemoStep = {
  title: "PrivateAksDeploy@1 — helm upgrade --install of the sample chart, running the built image, with the agent's service account",
  async run({ env, work, outputs }) {
    const dir = join(work, 'cluster');
    await mkdir(dir);
    console.log('    starting etcd, kube-apiserver and kube-controller-manager on loopback, and a fake kubelet…');
    const cluster = await startControlPlane({ dir, ca: env.ca });
    const kubelet = await startFakeKubelet(cluster, { namespaces: ['demo'] });
    try {
      await cluster.createNamespace('demo', { podSecurity: 'baseline' });
      await cluster.createServiceAccount('demo', 'agent');
      // The sample chart ships a CRD, which is cluster-scoped: the demo agent may create it.
      await cluster.kubectl(['create', 'clusterrolebinding', 'demo-agent', '--clusterrole=cluster-admin', '--serviceaccount=demo:agent']);
      const kubeconfigPath = await cluster.kubeconfigFor({ token: await cluster.mintServiceAccountToken('demo', 'agent') });
      const principal = env.addServicePrincipal('pull');
      const fromRegistry = Boolean(outputs.chartRef);
      const run = await runTask('PrivateAksDeploy', {
        inputs: {
          connectionType: 'kubeconfig',
          kubeconfigPath,
          authMode: fromRegistry ? 'serviceConnection' : 'none',
          ...(fromRegistry ? { azureSubscription: 'arm' } : {}),
          namespace: 'demo',
          deployType: 'helm',
          chart: outputs.chartRef || SAMPLE_CHART,
          ...(fromRegistry && outputs.chartVersion ? { chartVersion: outputs.chartVersion } : {}),
          releaseName: 'web',
          // The image the build step pushed, by digest (the chart writes repository:tag, and a tag may carry @digest).
          overrides: ['replicaCount=2', ...(outputs.imageDigest ? [`image.repository=${outputs.imageRepository}`, `image.tag=$(Build.BuildId)@${outputs.imageDigest}`] : [])].join('\n'),
        },
        connections: {
          arm: {
            scheme: 'ServicePrincipal',
            parameters: { serviceprincipalid: principal.clientId, serviceprincipalkey: principal.clientSecret, tenantid: env.entra.tenantId, authenticationType: 'spnKey' },
            data: { environmentAuthorityUrl: env.entra.authorityUrl },
          },
        },
        env: {
          PATH: `${dirname(testToolPath('helm'))}:${dirname(kubeToolPath('kubectl'))}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          NODE_EXTRA_CA_CERTS: env.ca.caCertPath,
          SSL_CERT_FILE: env.ca.caCertPath,
        },
        timeoutMs: 180_000,
      });
      if (run.result === 'Succeeded') console.log(`    deployed image: ${await cluster.kubectl(['-n', 'demo', 'get', 'deployments', '-o', 'jsonpath={..containers[0].image}'])}`);
      return run;
    } finally {
      await kubelet.stop();
      await cluster.stop();
    }
  },
};
