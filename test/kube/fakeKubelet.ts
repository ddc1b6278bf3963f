// Plays the scheduler and the kubelet for the pods of chosen namespaces, so
// workloads roll out through the real controllers without a container runtime:
// registers a Ready node, binds each new pod to it, and writes the pod status a
// kubelet would write once the containers started (Running and Ready), ran to
// completion (Succeeded, for pods that do not restart), or failed with a
// reason such as CrashLoopBackOff or ImagePullBackOff. Pods being deleted are
// removed the way a kubelet does after their containers stop.
import { randomBytes } from 'node:crypto';
import type { ControlPlane } from './controlPlane.js';
import { KubeApiError, type KubeList, type ObjectMeta, type WatchEvent } from './kubeClient.js';

interface Container {
  name: string;
  image: string;
  /** `Always` marks a sidecar among the init containers. */
  restartPolicy?: string;
}

/** The parts of a pod the fake kubelet reads. */
export interface Pod {
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    restartPolicy?: 'Always' | 'OnFailure' | 'Never';
    containers: Container[];
    initContainers?: Container[];
  };
  status?: { phase?: string };
}

/**
 * What happens to a pod once it is on the node:
 * - `ready`: its containers start and turn Ready (pods with restartPolicy Never or OnFailure, such
 *   as Job pods, run to completion instead: phase Succeeded);
 * - `pending`: it stays Pending, as if its image were still being pulled (for timeout tests);
 * - `{ readyAfterMs }`: Pending for that long (a slow image pull), then as `ready`;
 * - `{ fail }`: its containers wait with that reason (`CrashLoopBackOff`, `ImagePullBackOff`, …);
 *   with restartPolicy Never the pod fails (phase Failed, containers terminated with that reason).
 */
export type PodDecision = 'ready' | 'pending' | { readyAfterMs: number } | { fail: string; message?: string };

export interface FakeKubeletOptions {
  /** Only pods in these namespaces are bound and run. */
  namespaces: string[];
  /** Default: every pod becomes ready. Called once per pod. */
  decide?: (pod: Pod) => PodDecision;
  /** Default: `fake-node-<random>`. */
  nodeName?: string;
}

export interface FakeKubelet {
  nodeName: string;
  /** Requests that failed while handling pods; a test can assert this stays empty. */
  errors: Error[];
  /** Stops watching and deletes the node. */
  stop(): Promise<void>;
}

/** Reasons a kubelet reports before a container ever ran: the pod stays Pending. */
const NEVER_STARTED = /Image|CreateContainer|ContainerCreating/;

/** Kubernetes timestamps are RFC 3339 in whole seconds. */
function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function condition(type: string, ready: boolean, reason?: string, message?: string): Record<string, string> {
  const result: Record<string, string> = { type, status: ready ? 'True' : 'False', lastTransitionTime: now() };
  if (reason) result.reason = reason;
  if (message) result.message = message;
  return result;
}

/** The status a kubelet would report for `pod` under `decision` (once it is no longer pending). */
function podStatus(pod: Pod, decision: 'ready' | { fail: string; message?: string }, podIp: string): Record<string, unknown> {
  const startedAt = now();
  const restartPolicy = pod.spec.restartPolicy ?? 'Always';
  const runsToCompletion = restartPolicy !== 'Always';
  const containerBase = (container: Container, index: number): Record<string, unknown> => ({
    name: container.name,
    image: container.image,
    imageID: '',
    containerID: `containerd://${pod.metadata.uid ?? 'pod'}-${index}`,
  });
  const initContainerStatuses = (pod.spec.initContainers ?? []).map((container, index) => container.restartPolicy === 'Always'
    ? { ...containerBase(container, index), ready: true, started: true, restartCount: 0, state: { running: { startedAt } } }
    : { ...containerBase(container, index), ready: true, started: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed', startedAt, finishedAt: startedAt } } });
  const common = { hostIP: '127.0.0.1', hostIPs: [{ ip: '127.0.0.1' }], podIP: podIp, podIPs: [{ ip: podIp }], startTime: startedAt, initContainerStatuses };
  const names = pod.spec.containers.map((container) => container.name).join(' ');

  if (decision === 'ready') {
    if (runsToCompletion) {
      return {
        ...common,
        phase: 'Succeeded',
        conditions: [
          condition('PodReadyToStartContainers', false),
          condition('Initialized', true, 'PodCompleted'),
          condition('Ready', false, 'PodCompleted'),
          condition('ContainersReady', false, 'PodCompleted'),
          condition('PodScheduled', true),
        ],
        containerStatuses: pod.spec.containers.map((container, index) => ({
          ...containerBase(container, index), ready: false, started: false, restartCount: 0,
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt, finishedAt: now() } },
        })),
      };
    }
    return {
      ...common,
      phase: 'Running',
      conditions: ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => condition(type, true)),
      containerStatuses: pod.spec.containers.map((container, index) => ({
        ...containerBase(container, index), ready: true, started: true, restartCount: 0, state: { running: { startedAt } },
      })),
    };
  }

  const reason = decision.fail;
  const message = decision.message ?? `${reason} (set by the test's fake kubelet)`;
  if (restartPolicy === 'Never') {
    return {
      ...common,
      phase: 'Failed',
      conditions: [
        condition('PodReadyToStartContainers', false),
        condition('Initialized', true),
        condition('Ready', false, 'PodFailed'),
        condition('ContainersReady', false, 'PodFailed'),
        condition('PodScheduled', true),
      ],
      containerStatuses: pod.spec.containers.map((container, index) => ({
        ...containerBase(container, index), ready: false, started: false, restartCount: 0,
        state: { terminated: { exitCode: 1, reason, message, startedAt, finishedAt: now() } },
      })),
    };
  }
  const neverStarted = NEVER_STARTED.test(reason);
  const unready = `containers with unready status: [${names}]`;
  return {
    ...common,
    // An image that never arrives keeps the pod Pending; a crashing container keeps it Running.
    phase: neverStarted ? 'Pending' : 'Running',
    conditions: [
      condition('PodReadyToStartContainers', true),
      condition('Initialized', true),
      condition('Ready', false, 'ContainersNotReady', unready),
      condition('ContainersReady', false, 'ContainersNotReady', unready),
      condition('PodScheduled', true),
    ],
    containerStatuses: pod.spec.containers.map((container, index) => ({
      ...containerBase(container, index),
      ready: false,
      started: false,
      restartCount: neverStarted ? 0 : 1,
      state: { waiting: { reason, message } },
      lastState: neverStarted ? {} : { terminated: { exitCode: 1, reason: 'Error', startedAt, finishedAt: startedAt } },
    })),
  };
}

function nodeObject(nodeName: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: nodeName,
      labels: { 'kubernetes.io/hostname': nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' },
    },
  };
}

function nodeStatus(): Record<string, unknown> {
  const heartbeat = now();
  const nodeCondition = (type: string, status: string, reason: string): Record<string, string> =>
    ({ type, status, reason, lastHeartbeatTime: heartbeat, lastTransitionTime: heartbeat });
  const resources = { cpu: '8', memory: '32Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  return {
    status: {
      capacity: resources,
      allocatable: resources,
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      conditions: [
        nodeCondition('Ready', 'True', 'KubeletReady'),
        nodeCondition('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
        nodeCondition('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
        nodeCondition('PIDPressure', 'False', 'KubeletHasSufficientPID'),
      ],
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        osImage: 'fake kubelet',
        kernelVersion: '',
        kubeletVersion: 'v0.0.0-fake',
        containerRuntimeVersion: 'fake://0',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  };
}

const MERGE_PATCH = { contentType: 'application/merge-patch+json' };

/** Registers a Ready node and starts running the pods of `options.namespaces` on it. */
export async function startFakeKubelet(controlPlane: ControlPlane, options: FakeKubeletOptions): Promise<FakeKubelet> {
  const nodeName = options.nodeName ?? `fake-node-${randomBytes(3).toString('hex')}`;
  const namespaces = new Set(options.namespaces);
  const decide = options.decide ?? ((): PodDecision => 'ready');
  // Its own connection (the watch holds one open), acting with a name that shows up in audit logs.
  const client = await controlPlane.clientFor({ user: `fake-kubelet:${nodeName}`, groups: ['system:masters'] });
  const errors: Error[] = [];
  const decided = new Set<string>();
  const delayed = new Set<NodeJS.Timeout>();
  let podCount = 0;

  await client.request('POST', '/api/v1/nodes', nodeObject(nodeName));
  // Node admission taints a new node `not-ready` until the node lifecycle controller sees it
  // Ready; that controller is off (no heartbeats here), so lift the taint as it would.
  await client.request('PATCH', `/api/v1/nodes/${nodeName}`, { spec: { taints: null } }, MERGE_PATCH);
  await client.request('PATCH', `/api/v1/nodes/${nodeName}/status`, nodeStatus(), MERGE_PATCH);

  const podPath = (pod: Pod, subresource = ''): string =>
    `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}${subresource}`;

  async function handle(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid ?? '';
    if (pod.metadata.deletionTimestamp) {
      // A kubelet deletes for good (grace 0) once the containers stopped; bound pods wait for it.
      if (pod.spec.nodeName === nodeName) {
        await client.request('DELETE', podPath(pod), { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } });
      }
      return;
    }
    if (!pod.spec.nodeName) {
      await client.request('POST', podPath(pod, '/binding'), {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: pod.metadata.name },
        target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
      });
      return;
    }
    if (pod.spec.nodeName !== nodeName || decided.has(uid) || (pod.status?.phase && pod.status.phase !== 'Pending')) return;
    decided.add(uid);
    const decision = decide(pod);
    if (decision === 'pending') return;
    podCount += 1;
    const podIp = `10.244.${podCount >> 8}.${podCount & 255}`;
    if (typeof decision === 'object' && 'readyAfterMs' in decision) {
      const timer = setTimeout(() => {
        delayed.delete(timer);
        client.request('PATCH', podPath(pod, '/status'), { status: podStatus(pod, 'ready', podIp) }, MERGE_PATCH).catch((error: unknown) => {
          if (!(error instanceof KubeApiError && error.statusCode === 404)) errors.push(error as Error);
        });
      }, decision.readyAfterMs);
      delayed.add(timer);
      return;
    }
    await client.request('PATCH', podPath(pod, '/status'), { status: podStatus(pod, decision, podIp) }, MERGE_PATCH);
  }

  async function handleQuietly(pod: Pod): Promise<void> {
    if (!namespaces.has(pod.metadata.namespace ?? '')) return;
    try {
      await handle(pod);
    } catch (error) {
      // 404: the pod is gone; 409: it was bound or replaced meanwhile. Both settle on a later event.
      if (error instanceof KubeApiError && (error.statusCode === 404 || error.statusCode === 409)) return;
      errors.push(error as Error);
    }
  }

  const abort = new AbortController();
  async function run(): Promise<void> {
    while (!abort.signal.aborted) {
      try {
        const list = await client.request<KubeList<Pod>>('GET', '/api/v1/pods');
        for (const pod of list.items) await handleQuietly(pod);
        // Events from the list's version on; when the watch ends (timeout, or an ERROR such as
        // 410 Gone), the loop lists again, so no resource version needs to be carried over.
        await client.watch<Pod>(`/api/v1/pods?watch=1&resourceVersion=${list.metadata.resourceVersion}`, async (event: WatchEvent<Pod>) => {
          if (event.type === 'ERROR') throw new Error(`pod watch ended: ${JSON.stringify(event.object)}`);
          if (event.type === 'ADDED' || event.type === 'MODIFIED') await handleQuietly(event.object);
        }, abort.signal);
      } catch (error) {
        if (abort.signal.aborted) return;
        errors.push(error as Error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
  const running = run();

  return {
    nodeName,
    errors,
    async stop() {
      abort.abort();
      for (const timer of delayed) clearTimeout(timer);
      await running;
      await client.request('DELETE', `/api/v1/nodes/${nodeName}`).catch(() => undefined);
      client.close();
    },
  };
}
