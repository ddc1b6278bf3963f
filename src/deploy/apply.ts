// Server-side apply of loaded manifests (https://kubernetes.io/docs/reference/using-api/server-side-apply/).
import { PatchStrategy } from '@kubernetes/client-node';
import { forEachLimited } from '../concurrency.js';
import type { Logger } from '../log.js';
import { FIELD_MANAGER, describeKubernetesError, type ClusterClient } from '../kubernetes/client.js';
import type { KubernetesManifest, LoadedManifest } from './manifests.js';

export interface AppliedObject {
  apiVersion: string;
  kind: string;
  name: string;
  /** Absent for cluster-scoped objects. */
  namespace?: string;
  /** The object as the server stored it (status included), for the rollout wait. */
  live: KubernetesManifest;
}

/** `Deployment/apps/web`, `Namespace/apps`: how applied objects are named in logs and the `appliedObjects` output. */
export function objectName(object: { kind: string; name: string; namespace?: string }): string {
  return object.namespace ? `${object.kind}/${object.namespace}/${object.name}` : `${object.kind}/${object.name}`;
}

/**
 * Kinds other objects depend on at admission (a namespace must exist before what lives in it, a
 * CRD before its custom resources); applied first, one at a time, before everything else in parallel.
 */
const FOUNDATION_KINDS = new Set(['Namespace', 'CustomResourceDefinition']);

interface ApplyOptions {
  /** Requests in flight at once. Default 4: enough to hide round trips; more only queue up behind the API server's own work. */
  concurrency?: number;
  logger: Logger;
}

/**
 * Applies every object with the product's field manager, taking over fields other managers own
 * (`--force-conflicts`): the pipeline is the source of truth for what it deploys. The first refused
 * object fails the run with Kubernetes' reason; objects already in flight finish first.
 */
export async function applyManifests(cluster: ClusterClient, manifests: readonly LoadedManifest[], options: ApplyOptions): Promise<AppliedObject[]> {
  const applied: { index: number; object: AppliedObject }[] = [];
  const applyOne = async ({ object, index }: LoadedManifest & { index: number }) => {
    const where = object.metadata.namespace ?? cluster.namespace;
    const action = `apply ${object.kind} "${object.metadata.name}"${FOUNDATION_KINDS.has(object.kind) ? '' : ` (namespace "${where}" unless cluster-scoped)`}`;
    let live: KubernetesManifest;
    try {
      live = await cluster.objects.patch(object, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
    } catch (error) {
      throw describeKubernetesError(error, action, cluster.access);
    }
    const result: AppliedObject = { apiVersion: object.apiVersion, kind: object.kind, name: live.metadata.name, namespace: live.metadata.namespace, live };
    options.logger.info(`applied ${objectName(result)}`);
    applied.push({ index, object: result });
  };
  const numbered = manifests.map((manifest, index) => ({ ...manifest, index }));
  for (const manifest of numbered.filter(({ object }) => FOUNDATION_KINDS.has(object.kind))) await applyOne(manifest);
  await forEachLimited(numbered.filter(({ object }) => !FOUNDATION_KINDS.has(object.kind)), options.concurrency ?? 4, applyOne);
  // In manifest order, not completion order, so outputs are stable from run to run.
  return applied.sort((a, b) => a.index - b.index).map(({ object }) => object);
}
