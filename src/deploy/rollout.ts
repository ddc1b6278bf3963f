// Waiting for applied workloads to roll out, with the same completion rules as `kubectl rollout
// status`, and explaining a failure from the pods and events when one does not.
import { setTimeout as sleep } from 'node:timers/promises';
import type { CoreV1Event, KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { UserError } from '../errors.js';
import type { Logger } from '../log.js';
import { describeKubernetesError, type ClusterClient } from '../kubernetes/client.js';
import { objectName, type AppliedObject } from './apply.js';

/** A workload the wait follows. */
type Workload = AppliedObject & { namespace: string };

const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);

/** Where a workload stands: `done`, still `progressing` (with a line for the log), or `failed` for a reason. */
type RolloutState = { phase: 'done'; summary: string } | { phase: 'progressing'; summary: string } | { phase: 'failed'; reason: string };

/**
 * Container reasons that do not go away by waiting: the image cannot be pulled, the container
 * config is broken, or the process keeps crashing. A pod showing one fails the rollout at once,
 * rather than after the timeout, and the reason is the error line.
 */
const STUCK_CONTAINER_REASONS = new Set(['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

interface RolloutOptions {
  /** How long all workloads together may take. */
  timeoutMs: number;
  /** Between status reads. Default 1 s. */
  pollIntervalMs?: number;
  logger: Logger;
}

class RolloutError extends UserError {}

/** Waits until every Deployment, StatefulSet, DaemonSet and Job in `applied` has rolled out. */
export async function waitForRollouts(cluster: ClusterClient, applied: readonly AppliedObject[], options: RolloutOptions): Promise<void> {
  const pending = applied.filter((object): object is Workload => WORKLOAD_KINDS.has(object.kind) && object.namespace !== undefined);
  if (pending.length === 0) return;
  const deadline = Date.now() + options.timeoutMs;
  const lastSummary = new Map<string, string>();
  options.logger.info(`Waiting up to ${Math.round(options.timeoutMs / 1000)} s for ${pending.length} workload(s) to roll out`);
  while (pending.length > 0) {
    for (const workload of [...pending]) {
      const state = await readState(cluster, workload);
      const name = objectName(workload);
      if (state.phase === 'failed') {
        await explainFailure(cluster, workload, options.logger);
        throw new RolloutError(`${name} failed to roll out: ${state.reason}`);
      }
      if (lastSummary.get(name) !== state.summary) {
        options.logger.info(`${name}: ${state.summary}`);
        lastSummary.set(name, state.summary);
      }
      if (state.phase === 'done') pending.splice(pending.indexOf(workload), 1);
    }
    if (pending.length === 0) break;
    if (Date.now() >= deadline) {
      for (const workload of pending) await explainFailure(cluster, workload, options.logger);
      const names = pending.map((workload) => `${objectName(workload)} (${lastSummary.get(objectName(workload)) ?? 'no status yet'})`);
      throw new RolloutError(`Rollout timed out after ${Math.round(options.timeoutMs / 1000)} s: ${names.join('; ')}. Raise rolloutTimeout if the workload is just slow.`);
    }
    await sleep(options.pollIntervalMs ?? 1000);
  }
}

interface WorkloadStatus {
  metadata?: { generation?: number; annotations?: Record<string, string> };
  spec?: { replicas?: number; completions?: number | null; selector?: { matchLabels?: Record<string, string> }; updateStrategy?: { type?: string } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
    succeeded?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

async function readWorkload(cluster: ClusterClient, workload: Workload): Promise<WorkloadStatus> {
  try {
    return await cluster.objects.read<KubernetesObject & WorkloadStatus>({ apiVersion: workload.apiVersion, kind: workload.kind, metadata: { name: workload.name, namespace: workload.namespace } });
  } catch (error) {
    throw describeKubernetesError(error, `read ${objectName(workload)}`, cluster.access);
  }
}

async function readState(cluster: ClusterClient, workload: Workload): Promise<RolloutState> {
  const object = await readWorkload(cluster, workload);
  const status = object.status ?? {};
  const condition = (type: string) => status.conditions?.find((candidate) => candidate.type === type && candidate.status === 'True');
  const stuck = await stuckPodReason(cluster, workload, object);
  if (stuck) return { phase: 'failed', reason: stuck };
  if (workload.kind === 'Job') {
    const failed = condition('Failed');
    if (failed) return { phase: 'failed', reason: `${failed.reason ?? 'Failed'}: ${failed.message ?? ''}`.trim() };
    const completions = object.spec?.completions ?? 1;
    const succeeded = status.succeeded ?? 0;
    return condition('Complete') ? { phase: 'done', summary: `complete (${succeeded} of ${completions} succeeded)` } : { phase: 'progressing', summary: `${succeeded} of ${completions} completions` };
  }
  // Until the controller has seen the new spec, every other number describes the old one.
  if ((status.observedGeneration ?? 0) < (object.metadata?.generation ?? 0)) return { phase: 'progressing', summary: 'waiting for the controller to observe the new spec' };
  if (workload.kind === 'Deployment') {
    const progressing = status.conditions?.find((candidate) => candidate.type === 'Progressing');
    if (progressing?.reason === 'ProgressDeadlineExceeded') return { phase: 'failed', reason: progressing.message ?? 'progress deadline exceeded' };
    const wanted = object.spec?.replicas ?? 1;
    const updated = status.updatedReplicas ?? 0;
    const available = status.availableReplicas ?? 0;
    const old = (status.replicas ?? 0) - updated;
    const summary = `${updated} of ${wanted} updated, ${available} available${old > 0 ? `, ${old} old replica(s) terminating` : ''}`;
    return updated >= wanted && available >= wanted && old <= 0 ? { phase: 'done', summary: `rolled out (${wanted} available)` } : { phase: 'progressing', summary };
  }
  if (workload.kind === 'StatefulSet') {
    const wanted = object.spec?.replicas ?? 1;
    const ready = status.readyReplicas ?? 0;
    const updated = status.updatedReplicas ?? 0;
    const revisionDone = object.spec?.updateStrategy?.type === 'OnDelete' || status.updateRevision === status.currentRevision || updated >= wanted;
    const summary = `${ready} of ${wanted} ready, ${updated} updated`;
    return ready >= wanted && revisionDone ? { phase: 'done', summary: `rolled out (${wanted} ready)` } : { phase: 'progressing', summary };
  }
  const desired = status.desiredNumberScheduled ?? 0;
  const updated = status.updatedNumberScheduled ?? 0;
  const available = status.numberAvailable ?? 0;
  const summary = `${updated} of ${desired} updated, ${available} available`;
  return updated >= desired && available >= desired ? { phase: 'done', summary: `rolled out (${available} available)` } : { phase: 'progressing', summary };
}

async function podsOf(cluster: ClusterClient, workload: Workload, object?: WorkloadStatus): Promise<V1Pod[]> {
  const labels = (object ?? (await readWorkload(cluster, workload))).spec?.selector?.matchLabels;
  if (!labels || Object.keys(labels).length === 0) return [];
  try {
    return (await cluster.core.listNamespacedPod({ namespace: workload.namespace, labelSelector: labelSelector(labels) })).items;
  } catch (error) {
    throw describeKubernetesError(error, `list the pods of ${objectName(workload)}`, cluster.access);
  }
}

/**
 * The pod-template label of the revision being rolled out: pods of older revisions may crash on
 * their way out without saying anything about the new one. Deployments name it through their
 * newest ReplicaSet (same `deployment.kubernetes.io/revision`), StatefulSets in `updateRevision`.
 */
async function currentRevisionLabel(cluster: ClusterClient, workload: Workload, object: WorkloadStatus): Promise<[string, string] | undefined> {
  if (workload.kind === 'StatefulSet' && object.status?.updateRevision) return ['controller-revision-hash', object.status.updateRevision];
  if (workload.kind !== 'Deployment') return undefined;
  const revision = object.metadata?.annotations?.['deployment.kubernetes.io/revision'];
  const labels = object.spec?.selector?.matchLabels;
  if (!revision || !labels) return undefined;
  let sets;
  try {
    sets = await cluster.apps.listNamespacedReplicaSet({ namespace: workload.namespace, labelSelector: labelSelector(labels) });
  } catch (error) {
    throw describeKubernetesError(error, `list the ReplicaSets of ${objectName(workload)}`, cluster.access);
  }
  const current = sets.items.find((set) => set.metadata?.annotations?.['deployment.kubernetes.io/revision'] === revision);
  const hash = current?.metadata?.labels?.['pod-template-hash'];
  return hash ? ['pod-template-hash', hash] : undefined;
}

/** The first pod of the current revision that cannot get better by waiting, as `pod web-1: ImagePullBackOff (…)`. */
async function stuckPodReason(cluster: ClusterClient, workload: Workload, object: WorkloadStatus): Promise<string | undefined> {
  const [revisionKey, revisionValue] = (await currentRevisionLabel(cluster, workload, object)) ?? [];
  for (const pod of await podsOf(cluster, workload, object)) {
    if (revisionKey && pod.metadata?.labels?.[revisionKey] !== revisionValue) continue;
    if (pod.metadata?.deletionTimestamp) continue;
    // A Job's failed pods are retried up to its backoffLimit; the Job's Failed condition decides.
    if (pod.status?.phase === 'Failed' && workload.kind !== 'Job') return `pod ${pod.metadata?.name} failed: ${pod.status.reason ?? ''} ${pod.status.message ?? ''}`.trim();
    for (const container of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const waiting = container.state?.waiting;
      if (waiting?.reason && STUCK_CONTAINER_REASONS.has(waiting.reason)) {
        return `pod ${pod.metadata?.name}, container ${container.name}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`;
      }
    }
  }
  return undefined;
}

/** Logs what a user needs to see why a workload did not roll out: its pods' conditions and container states, and recent warnings. */
async function explainFailure(cluster: ClusterClient, workload: Workload, logger: Logger): Promise<void> {
  const labels = (await readWorkload(cluster, workload).catch(() => undefined))?.spec?.selector?.matchLabels ?? {};
  logger.info(`--- ${objectName(workload)}`);
  await explainPods(cluster, workload.namespace, labelSelector(labels), logger);
}

/** A workload's `matchLabels` as the equality-based selector the list APIs take (`app=web,tier=api`). */
function labelSelector(matchLabels: Record<string, string>): string {
  return Object.entries(matchLabels).map(([key, value]) => `${key}=${value}`).join(',');
}

/**
 * Logs the pods matching `labelSelector` (conditions, container states) and the namespace's recent
 * warning events. Best effort: the error that follows is the result, not this.
 */
export async function explainPods(cluster: ClusterClient, namespace: string, labelSelector: string, logger: Logger, seenWhileWaiting: V1Pod[] = []): Promise<void> {
  try {
    const pods = seenWhileWaiting.length > 0 ? seenWhileWaiting : labelSelector ? (await cluster.core.listNamespacedPod({ namespace, labelSelector })).items : [];
    const which = seenWhileWaiting.length > 0 ? 'not ready while waiting' : 'now';
    logger.info(`--- ${pods.length} pod(s) matching ${labelSelector || 'nothing'} in namespace ${namespace} (${which})`);
    for (const pod of pods) logger.info(describePod(pod));
    const events = (await cluster.core.listNamespacedEvent({ namespace, fieldSelector: 'type=Warning' })).items;
    const recent = events.sort((a, b) => eventTime(b) - eventTime(a)).slice(0, 20).reverse();
    logger.info(`--- warning events in namespace ${namespace}: ${recent.length === 0 ? 'none' : recent.length}`);
    for (const event of recent) logger.info(describeEvent(event));
  } catch (error) {
    logger.warn(`Could not read the pods and events of namespace ${namespace}: ${describeKubernetesError(error, 'read pods and events', cluster.access).message}`);
  }
}

/**
 * Remembers the pods matching `labelSelector` that are not ready, polling while another tool
 * (helm) waits: with `--atomic` helm rolls a failed release back before it returns, and the pods
 * that explain the failure are gone by then. `stop()` gives the last non-empty set seen.
 */
export function watchUnreadyPods(cluster: ClusterClient, namespace: string, labelSelector: string, intervalMs = 2000): { stop(): Promise<V1Pod[]> } {
  let unready: V1Pod[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const pods = await cluster.core.listNamespacedPod({ namespace, labelSelector }).then((list) => list.items, () => []);
      const notReady = pods.filter((pod) => pod.status?.phase !== 'Succeeded' && !pod.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True'));
      if (notReady.length > 0) unready = notReady;
      await sleep(intervalMs);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return unready;
    },
  };
}

function describePod(pod: V1Pod): string {
  const lines = [`pod ${pod.metadata?.name} (${pod.status?.phase ?? 'Unknown'}${pod.spec?.nodeName ? ` on ${pod.spec.nodeName}` : ', not scheduled'})`];
  for (const condition of pod.status?.conditions ?? []) {
    lines.push(`  condition ${condition.type}=${condition.status}${condition.reason ? ` ${condition.reason}` : ''}${condition.message ? `: ${condition.message}` : ''}`);
  }
  for (const container of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const state = container.state ?? {};
    const described = state.waiting
      ? `waiting: ${state.waiting.reason ?? ''}${state.waiting.message ? ` (${state.waiting.message})` : ''}`
      : state.terminated
        ? `terminated: ${state.terminated.reason ?? ''} exit code ${state.terminated.exitCode}${state.terminated.message ? ` (${state.terminated.message})` : ''}`
        : state.running
          ? `running, ${container.ready ? 'ready' : 'not ready'}`
          : 'no state';
    lines.push(`  container ${container.name} ${described}, restarts ${container.restartCount}`);
  }
  return lines.join('\n');
}

function eventTime(event: CoreV1Event): number {
  const time = event.lastTimestamp ?? event.eventTime ?? event.metadata?.creationTimestamp;
  return time ? new Date(time).getTime() : 0;
}

function describeEvent(event: CoreV1Event): string {
  const involved = event.involvedObject;
  return `  ${event.reason ?? 'Warning'} ${involved.kind}/${involved.name}${(event.count ?? 1) > 1 ? ` (×${event.count})` : ''}: ${event.message ?? ''}`;
}
