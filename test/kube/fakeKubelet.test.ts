// Workloads roll out through the real controllers (Deployment → ReplicaSet →
// Pod, StatefulSet, DaemonSet, Job) with the fake kubelet standing in for the
// node, and `kubectl rollout status` sees the same thing a user would.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane } from './controlPlane.js';
import { startFakeKubelet, type FakeKubelet, type Pod, type PodDecision } from './fakeKubelet.js';
import type { KubeList } from './kubeClient.js';

const NAMESPACE = 'apps';
/** Pods labelled with this fail with the label's value as the reason. */
const FAIL_LABEL = 'test.fake-kubelet/fail';
const PENDING_LABEL = 'test.fake-kubelet/pending';

function decide(pod: Pod): PodDecision {
  const labels = pod.metadata.labels ?? {};
  if (labels[PENDING_LABEL]) return 'pending';
  return labels[FAIL_LABEL] ? { fail: labels[FAIL_LABEL] } : 'ready';
}

/** A pod template that passes Pod Security `restricted`. */
function template(app: string, image: string, extraLabels: Record<string, string> = {}, restartPolicy = 'Always'): Record<string, unknown> {
  return {
    metadata: { labels: { app, ...extraLabels } },
    spec: {
      restartPolicy,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'app', image, securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
    },
  };
}

function deployment(name: string, image: string, replicas: number, extraLabels: Record<string, string> = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: template(name, image, extraLabels) },
  };
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

void describe('fake kubelet', () => {
  let dir: string;
  let cluster: ControlPlane;
  let kubelet: FakeKubelet;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fake-kubelet-'));
    cluster = await startControlPlane({ dir });
    await cluster.createNamespace(NAMESPACE, { podSecurity: 'restricted' });
    kubelet = await startFakeKubelet(cluster, { namespaces: [NAMESPACE], decide });
  });

  after(async () => {
    await kubelet?.stop();
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const podsOf = async (app: string): Promise<Pod[]> =>
    (await cluster.admin.request<KubeList<Pod>>('GET', `/api/v1/namespaces/${NAMESPACE}/pods?labelSelector=app%3D${app}`)).items;
  const rolloutStatus = (kind: string, name: string, timeout = '60s'): Promise<string> =>
    cluster.kubectl(['rollout', 'status', `${kind}/${name}`, `--namespace=${NAMESPACE}`, `--timeout=${timeout}`], { timeoutMs: 90_000 });

  void it('rolls a Deployment out and through an image update', async () => {
    await cluster.admin.request('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`, deployment('web', 'registry.test/web:1', 2));
    assert.match(await rolloutStatus('deployment', 'web'), /successfully rolled out/);
    const pods = await podsOf('web');
    assert.equal(pods.length, 2);
    for (const pod of pods) assert.equal(pod.spec.nodeName, kubelet.nodeName);

    await cluster.kubectl(['set', 'image', 'deployment/web', 'app=registry.test/web:2', `--namespace=${NAMESPACE}`]);
    assert.match(await rolloutStatus('deployment', 'web'), /successfully rolled out/);
    // The replaced pods are deleted for good, as a kubelet does once their containers stop.
    const images = await waitUntil('the old pods to go', async () => {
      const current = await podsOf('web');
      return current.length === 2 ? current.map((pod) => pod.spec.containers[0].image) : undefined;
    });
    assert.deepEqual(images, ['registry.test/web:2', 'registry.test/web:2']);
  });

  void it('shows why a pod failed, and rollout status does not report success', async () => {
    await cluster.admin.request('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`,
      deployment('broken', 'registry.test/broken:1', 1, { [FAIL_LABEL]: 'CrashLoopBackOff' }));
    const waiting = await waitUntil('the crash loop to show', async () => {
      const [pod] = await podsOf('broken');
      const status = pod?.status as { containerStatuses?: { state: { waiting?: { reason: string } } }[] } | undefined;
      return status?.containerStatuses?.[0]?.state.waiting;
    });
    assert.equal(waiting.reason, 'CrashLoopBackOff');
    await assert.rejects(rolloutStatus('deployment', 'broken', '2s'), /timed out waiting/);
  });

  void it('keeps pods Pending when told to', async () => {
    await cluster.admin.request('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`,
      deployment('stuck', 'registry.test/stuck:1', 1, { [PENDING_LABEL]: 'true' }));
    const pod = await waitUntil('the pod to be bound', async () => (await podsOf('stuck')).find((candidate) => candidate.spec.nodeName));
    assert.equal(pod.status?.phase, 'Pending');
    await assert.rejects(rolloutStatus('deployment', 'stuck', '2s'), /timed out waiting/);
  });

  void it('rolls out a StatefulSet and a DaemonSet', async () => {
    await cluster.admin.request('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/statefulsets`, {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'db' },
      spec: { replicas: 2, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db', 'registry.test/db:1') },
    });
    await cluster.admin.request('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/daemonsets`, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'agent' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent', 'registry.test/agent:1') },
    });
    assert.match(await rolloutStatus('statefulset', 'db'), /roll out complete|rolling update complete/);
    assert.match(await rolloutStatus('daemonset', 'agent'), /successfully rolled out/);
    assert.deepEqual((await podsOf('db')).map((pod) => pod.metadata.name).sort(), ['db-0', 'db-1']);
    // A DaemonSet with no eligible node also reports success; this one must have run on the fake node.
    assert.deepEqual((await podsOf('agent')).map((pod) => pod.spec.nodeName), [kubelet.nodeName]);
  });

  void it('completes a Job and fails one whose pod fails', async () => {
    const job = (name: string, labels: Record<string, string> = {}): Record<string, unknown> => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name },
      spec: { backoffLimit: 0, template: template(name, 'registry.test/task:1', labels, 'Never') },
    });
    await cluster.admin.request('POST', `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, job('migrate'));
    await cluster.admin.request('POST', `/apis/batch/v1/namespaces/${NAMESPACE}/jobs`, job('explode', { [FAIL_LABEL]: 'Error' }));
    await cluster.kubectl(['wait', '--for=condition=Complete', 'job/migrate', `--namespace=${NAMESPACE}`, '--timeout=60s'], { timeoutMs: 90_000 });
    await cluster.kubectl(['wait', '--for=condition=Failed', 'job/explode', `--namespace=${NAMESPACE}`, '--timeout=60s'], { timeoutMs: 90_000 });
    const [failedPod] = await podsOf('explode');
    assert.equal(failedPod.status?.phase, 'Failed');
  });

  void it('handled every pod without a failed request', () => {
    assert.deepEqual(kubelet.errors.map(String), []);
  });
});
